// File formats: write -> read keeps every energy for every writable format (integer and random
// double models, with and without labels and constraint groups), the FORMATS.md toy problem
// written by hand in each format, published solution vectors of real instances against
// known_values.csv, Biq Mac == -Beasley, gzip input, and one bad-input fixture per failure case.
#include <doctest/doctest.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "qprune/error.hpp"
#include "qprune/formats.hpp"
#include "qprune/qubo_model.hpp"
#include "tests/test_support.hpp"

using namespace qprune;
namespace fs = std::filesystem;

namespace {

// A fresh folder under the build's temp dir for files a test writes.
fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("qprune_test_formats_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// E(x) term by term from the definition (independent of QuboModel::energy).
double reference_energy(const QuboModel& m, const Assignment& x) {
  double e = m.offset();
  for (int i = 0; i < m.num_variables(); ++i) {
    if (!x[static_cast<std::size_t>(i)]) continue;
    e += m.linear()[i];
    for (int j = i + 1; j < m.num_variables(); ++j)
      if (x[static_cast<std::size_t>(j)]) e += m.coupling(i, j);
  }
  return e;
}

Assignment random_assignment(int n, std::mt19937_64& rng) {
  Assignment x(static_cast<std::size_t>(n));
  for (auto& v : x) v = static_cast<std::uint8_t>(rng() & 1U);
  return x;
}

// Random doubles over many magnitudes (so the shortest-text writer is really exercised).
QuboModel random_double_model(int n, double density, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0), e(-6.0, 6.0), p(0.0, 1.0);
  const auto value = [&] { return u(rng) * std::pow(10.0, e(rng)); };
  Eigen::VectorXd c(n);
  for (int i = 0; i < n; ++i) c[i] = value();
  std::vector<Coupling> q;
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j)
      if (p(rng) < density) q.push_back({i, j, value()});
  return QuboModel::from_couplings(n, c, q, value());
}

// Same coefficients, bit for bit.
void check_same_model(const QuboModel& a, const QuboModel& b) {
  REQUIRE(a.num_variables() == b.num_variables());
  CHECK(a.offset() == b.offset());
  CHECK(a.num_couplings() == b.num_couplings());
  for (int i = 0; i < a.num_variables(); ++i) {
    CHECK(a.linear()[i] == b.linear()[i]);
    for (int j = i + 1; j < a.num_variables(); ++j) CHECK(a.coupling(i, j) == b.coupling(i, j));
  }
}

void check_same_energies(const QuboModel& a, const QuboModel& b, std::uint64_t seed) {
  REQUIRE(a.num_variables() == b.num_variables());
  std::mt19937_64 rng(seed);
  for (int t = 0; t < 200; ++t) {
    const Assignment x = random_assignment(a.num_variables(), rng);
    CHECK(a.energy(x) == b.energy(x));
  }
}

// A Max-Cut model: E = -cut(x) = -sum w_ij (x_i + x_j - 2 x_i x_j), built from an edge list.
QuboModel cut_model(int n, const std::vector<Coupling>& edges) {
  Eigen::VectorXd c = Eigen::VectorXd::Zero(n);
  std::vector<Coupling> q;
  for (const Coupling& e : edges) {
    c[e.i] -= e.value;
    c[e.j] -= e.value;
    q.push_back({e.i, e.j, 2.0 * e.value});
  }
  return QuboModel::from_couplings(n, c, q);
}

double cut_weight(const std::vector<Coupling>& edges, const Assignment& x) {
  double cut = 0.0;
  for (const Coupling& e : edges)
    if (x[static_cast<std::size_t>(e.i)] != x[static_cast<std::size_t>(e.j)]) cut += e.value;
  return cut;
}

const std::vector<std::string> kWritable = {"qbsolv", "coo", "json", "mqlib", "qplib", "mtx"};
const std::map<std::string, std::string> kExtension = {
    {"qbsolv", ".qubo"}, {"coo", ".coo"}, {"json", ".json"},   {"mqlib", ".mqlib"},
    {"maxcut", ".gset"}, {"lp", ".lp"},   {"qplib", ".qplib"}, {"mtx", ".mtx"}};

QuboModel toy() {
  return QuboModel::from_couplings(3, Eigen::Vector3d(-5, -3, -1), {{0, 1, 12}, {1, 2, 2}});
}

}  // namespace

TEST_CASE("the registry lists every format with its extensions and finds them by name") {
  std::map<std::string, FormatInfo> by_name;
  for (const FormatInfo& f : formats()) by_name[f.name] = f;
  for (const char* name :
       {"qbsolv", "coo", "json", "mqlib", "maxcut", "beasley", "biqmac", "qplib", "lp", "mtx"})
    CHECK(by_name.count(name) == 1);
  CHECK(format_by_name("QBSOLV").name == "qbsolv");
  CHECK_THROWS_AS((void)format_by_name("nope"), InvalidArgument);
  CHECK(detect_format("a/b.qubo") == "qbsolv");
  CHECK(detect_format("a/b.coo.gz") == "coo");
  CHECK(detect_format("x.sparse") == "biqmac");
  CHECK(detect_format("x.qplib") == "qplib");
  CHECK(detect_format("x.mtx") == "mtx");
  CHECK(detect_format("x.rudy") == "maxcut");
  CHECK(detect_format(test::data_path("instances/bqp50.txt")) == "beasley");
  CHECK(detect_format(test::data_path("instances/bqp50.txt") + "#3") == "beasley");
  CHECK(detect_format(test::data_path("formats/toy.txt")) == "beasley");
  // A Gset-style .txt file (2 tokens on the first line) is Max-Cut.
  const fs::path dir = temp_dir("detect");
  std::ofstream(dir / "G0.txt") << "3 2 \n1 2 1\n2 3 1\n";
  CHECK(detect_format((dir / "G0.txt").string()) == "maxcut");
  CHECK_THROWS_AS((void)detect_format("missing.unknown"), InvalidArgument);
  CHECK_THROWS_AS(write_model(toy(), (dir / "x.sparse").string()), InvalidArgument);  // read-only
}

TEST_CASE("write -> read keeps every coefficient for every writable format") {
  const fs::path dir = temp_dir("roundtrip");
  for (const std::string& format : kWritable) {
    CAPTURE(format);
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      for (const QuboModel& m :
           {test::random_model(14, 0.4, seed), random_double_model(14, 0.5, seed),
            test::random_model(40, 0.05, seed, 1000), random_double_model(30, 0.9, seed)}) {
        const std::string path = (dir / ("m" + kExtension.at(format))).string();
        write_model(m, path);
        const QuboModel back = read_model(path);
        check_same_model(m, back);
        check_same_energies(m, back, seed);
      }
    }
  }
}

TEST_CASE("maxcut round trip: a cut-form model survives, any other model is refused") {
  const fs::path dir = temp_dir("maxcut");
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> w(-5, 5);
  std::vector<Coupling> edges;
  for (int i = 0; i < 12; ++i)
    for (int j = i + 1; j < 12; ++j)
      if (rng() % 3 == 0) edges.push_back({i, j, w(rng) / 4.0});  // dyadic: sums are exact
  const QuboModel m = cut_model(12, edges);
  const std::string path = (dir / "g.gset").string();
  write_model(m, path);
  const QuboModel back = read_model(path);
  check_same_model(m, back);
  for (std::uint64_t bits = 0; bits < 4096; bits += 7) {
    const Assignment x = test::bits_to_assignment(bits, 12);
    CHECK(back.energy(x) == -cut_weight(edges, x));
  }
  try {
    write_model(toy(), (dir / "toy.gset").string());
    FAIL("a non-cut model was written as maxcut");
  } catch (const InvalidArgument& e) {
    CHECK(std::string(e.what()).find("mqlib") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(dir / "toy.gset"));
}

TEST_CASE("labels, constraint groups and metadata survive JSON exactly") {
  const fs::path dir = temp_dir("json");
  QuboModel m = random_double_model(9, 0.6, 5);
  m.set_labels({"layer.0.h0", "layer.0.h1", "layer.0.h2", "a b", "\"q\"", "x", "y", "z", "w"});
  m.add_constraint({"layer.0", {0, 1, 2}, 2});
  m.add_constraint({"rest", {4, 6, 8}, 1});
  m.metadata["model"] = "tiny";
  const std::string path = (dir / "m.json").string();
  write_model(m, path);
  const QuboModel back = read_model(path);
  check_same_model(m, back);
  CHECK(back.labels() == m.labels());
  REQUIRE(back.constraints().size() == 2);
  CHECK(back.constraints()[1].name == "rest");
  CHECK(back.constraints()[1].variables == std::vector<int>{4, 6, 8});
  CHECK(back.constraints()[1].k == 1);
  CHECK(back.metadata.at("model") == "tiny");
}

TEST_CASE(
    "formats without constraint groups get the penalty w (count - k)^2 + shift (count - k) and "
    "say so") {
  const fs::path dir = temp_dir("penalty");
  QuboModel m = test::random_model(10, 0.5, 3);
  m.add_constraint({"g0", {0, 1, 2, 3}, 2});
  m.add_constraint({"g1", {5, 7, 9}, 1});
  for (const std::optional<double> weight :
       {std::optional<double>(), std::optional<double>(37.5)}) {
    const double w = weight.value_or(m.default_penalty_weight());
    const std::vector<double> shifts = m.penalty_terms().shifts;
    for (const std::string& format :
         {std::string("qbsolv"), std::string("coo"), std::string("mqlib")}) {
      CAPTURE(format);
      const std::string path = (dir / ("p" + kExtension.at(format))).string();
      WriteOptions options;
      options.penalty_weight = weight;
      write_model(m, path, options);
      CHECK(slurp(path).find("constraint groups added as the penalty") != std::string::npos);
      const QuboModel back = read_model(path);
      CHECK_FALSE(back.has_constraints());
      for (std::uint64_t bits = 0; bits < 1024; ++bits) {
        const Assignment x = test::bits_to_assignment(bits, 10);
        double penalty = 0.0;
        for (std::size_t gi = 0; gi < m.constraints().size(); ++gi) {
          const CardinalityConstraint& g = m.constraints()[gi];
          int count = 0;
          for (int v : g.variables) count += x[static_cast<std::size_t>(v)];
          penalty += w * (count - g.k) * (count - g.k) + shifts[gi] * (count - g.k);
        }
        CHECK(back.energy(x) == doctest::Approx(reference_energy(m, x) + penalty).epsilon(1e-12));
      }
    }
  }
}

TEST_CASE("the Ising (SPIN) form: coo only, the same energy of every state, groups as a penalty") {
  const fs::path dir = temp_dir("spin");
  QuboModel m = test::random_model(10, 0.5, 5);
  m.add_constraint({"g0", {0, 2, 4, 6}, 2});
  WriteOptions options;
  options.spin = true;
  const std::string path = (dir / "spin.coo").string();
  write_model(m, path, options);
  CHECK(slurp(path).rfind("# vartype=SPIN\n", 0) == 0);
  const QuboModel back = read_model(path);
  const QuboModel penalised = m.penalized();
  for (std::uint64_t bits = 0; bits < 1024; ++bits) {
    const Assignment x = test::bits_to_assignment(bits, 10);
    CHECK(back.energy(x) == doctest::Approx(penalised.energy(x)).epsilon(1e-12));
  }
  CHECK_THROWS_AS(write_model(m, (dir / "spin.qubo").string(), options), InvalidArgument);
}

TEST_CASE("the FORMATS.md toy problem written by hand reads to the same model in every format") {
  const QuboModel expected = toy();
  for (const char* file :
       {"toy.qubo", "toy_no_newline.qubo", "toy.coo", "toy_spin.coo", "toy.mqlib", "toy.txt",
        "toy.sparse", "toy.qplib", "toy.json", "toy.mtx", "toy_general.mtx"}) {
    CAPTURE(file);
    const QuboModel m = read_model(test::data_path(std::string("formats/") + file));
    REQUIRE(m.num_variables() == 3);
    CHECK(m.energy({1, 0, 1}) == -6.0);
    CHECK(test::brute_force_minimum(m, false) == -6.0);
    for (std::uint64_t bits = 0; bits < 8; ++bits) {
      const Assignment x = test::bits_to_assignment(bits, 3);
      CHECK(m.energy(x) == expected.energy(x));
    }
  }
  const QuboModel json = read_model(test::data_path("formats/toy.json"));
  CHECK(json.label(1) == "b");
  REQUIRE(json.constraints().size() == 1);
  CHECK(json.constraints()[0].k == 2);
  CHECK(json.metadata.at("origin") == "FORMATS.md");
}

TEST_CASE("the LP writer reproduces the FORMATS.md toy and keeps groups as equalities") {
  const fs::path dir = temp_dir("lp");
  write_model(toy(), (dir / "toy.lp").string());
  std::string text = slurp(dir / "toy.lp");
  // Drop the `\` comment lines, then compare with the hand-written file.
  std::istringstream lines(text);
  std::string line, body;
  while (std::getline(lines, line))
    if (line.empty() || line[0] != '\\') body += line + "\n";
  CHECK(body == slurp(test::data_path("formats/toy.lp")));

  QuboModel m = toy();
  m.set_labels({"layer.0", "e24", "end"});
  m.add_constraint({"pick 2", {0, 1, 2}, 2});
  QuboModel shifted = QuboModel::from_couplings(3, m.linear(), m.coupling_list(), 7.5);
  shifted.set_labels(m.labels());
  shifted.add_constraint(m.constraints()[0]);
  write_model(shifted, (dir / "c.lp").string());
  text = slurp(dir / "c.lp");
  CHECK(text.find("Subject To\n c1_pick_2: layer.0 + x_e24 + x_end = 2\n") != std::string::npos);
  CHECK(text.find(
            "- 5 layer.0 - 3 x_e24 - x_end + [ 24 layer.0 * x_e24 + 4 x_e24 * x_end ] / 2 + 7.5") !=
        std::string::npos);
  CHECK(text.find("Binary\n layer.0 x_e24 x_end\nEnd\n") != std::string::npos);
}

TEST_CASE("COO is written with plain decimals only (dimod's regex skips exponents)") {
  const fs::path dir = temp_dir("coo");
  const QuboModel m =
      QuboModel::from_couplings(2, Eigen::Vector2d(1e-7, 3e12 + 0.5), {{0, 1, -2.5e-5}});
  write_model(m, (dir / "m.coo").string());
  const std::string text = slurp(dir / "m.coo");
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line))
    if (!line.empty() && line[0] != '#') CHECK(line.find_first_of("eE") == std::string::npos);
  check_same_model(m, read_model((dir / "m.coo").string()));
}

TEST_CASE("precision below 17 rounds non-integers, integers stay exact") {
  const fs::path dir = temp_dir("precision");
  const QuboModel m =
      QuboModel::from_couplings(2, Eigen::Vector2d(1.0 / 3.0, 12345678), {{0, 1, 2}});
  WriteOptions options;
  options.precision = 3;
  write_model(m, (dir / "m.qubo").string(), options);
  const QuboModel back = read_model((dir / "m.qubo").string());
  CHECK(back.linear()[0] == 0.333);
  CHECK(back.linear()[1] == 12345678.0);
  options.precision = -1;
  CHECK_THROWS_AS(write_model(m, (dir / "m.qubo").string(), options), InvalidArgument);
}

TEST_CASE("gzip input reads identically, detected by its magic bytes") {
  const fs::path dir = temp_dir("gzip");
  const std::string plain = test::data_path("instances/bqp50.txt");
  const std::string text = slurp(plain);
  for (const char* name : {"bqp50.txt.gz", "bqp50.txt"}) {  // the second is gzip under a plain name
    gzFile f = gzopen((dir / name).c_str(), "wb");
    REQUIRE(f != nullptr);
    REQUIRE(gzwrite(f, text.data(), static_cast<unsigned>(text.size())) ==
            static_cast<int>(text.size()));
    REQUIRE(gzclose(f) == Z_OK);
    for (int k : {1, 7}) {
      const QuboModel a = read_model(plain + "#" + std::to_string(k));
      const QuboModel b = read_model((dir / name).string() + "#" + std::to_string(k));
      check_same_model(a, b);
    }
  }
  // Written .gz files are compressed and read back.
  write_model(toy(), (dir / "toy.qubo.gz").string());
  CHECK(static_cast<unsigned char>(slurp(dir / "toy.qubo.gz")[0]) == 0x1f);
  check_same_model(toy(), read_model((dir / "toy.qubo.gz").string()));
}

namespace {

// known_values.csv: instance -> (sense, value).
std::map<std::string, std::pair<std::string, double>> known_values(const std::string& csv) {
  std::map<std::string, std::pair<std::string, double>> out;
  std::ifstream in(csv);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream s(line);
    std::string field;
    for (int k = 0; k < 6 && std::getline(s, field, ','); ++k) f.push_back(field);
    if (f.size() == 6) out[f[1]] = {f[3], std::stod(f[4])};
  }
  return out;
}

// Published value as a qprune energy: maximisation values are negated.
double energy_of(const std::pair<std::string, double>& v) {
  return v.first == "max" ? -v.second : v.second;
}

}  // namespace

TEST_CASE("published solution vectors of the copied instances reach their known values") {
  const auto known = known_values(test::data_path("instances/known_values.csv"));
  struct Case {
    std::string file, format, solution, instance;
  };
  for (const Case& c :
       std::vector<Case>{{"bqp100.txt#1", "", "bqp100.1.sol", "bqp100.1"},
                         {"be100.1.sparse", "", "be100.1.sol", "be100.1"},
                         {"g05_60.0", "maxcut", "g05_60.0.sol", "g05_60.0"},
                         {"QPLIB_3852.qplib", "", "QPLIB_3852.sol", "QPLIB_3852"}}) {
    CAPTURE(c.file);
    ReadOptions options;
    options.format = c.format;
    const QuboModel m = read_model(test::data_path("instances/" + c.file), options);
    const Assignment x =
        read_solution(test::data_path("instances/" + c.solution), m.num_variables());
    REQUIRE(known.count(c.instance) == 1);
    CHECK(m.energy(x) == energy_of(known.at(c.instance)));
    CHECK(reference_energy(m, x) == doctest::Approx(energy_of(known.at(c.instance))));
  }
  // gka1b (n = 20): brute force over all 2^20 assignments reaches the published optimum.
  const QuboModel gka = read_model(test::data_path("instances/gka1b.sparse"));
  REQUIRE(gka.num_variables() == 20);
  Assignment x(20, 0);
  double e = gka.energy(x), best = e;
  for (std::uint32_t k = 1; k < (1U << 20); ++k) {  // Gray code: one flip per step
    const int bit = __builtin_ctz(k);
    e += gka.flip_delta(x, bit);
    x[static_cast<std::size_t>(bit)] ^= 1;
    best = std::min(best, e);
  }
  CHECK(best == energy_of(known.at("gka1b")));
  for (const char* name : {"gka2b", "gka6a", "gka7a"}) {
    const QuboModel g = read_model(test::data_path(std::string("instances/") + name + ".sparse"));
    CHECK(g.num_variables() == 30);
    CHECK(g.energy_bounds().lower <= energy_of(known.at(name)));
  }
}

TEST_CASE("Biq Mac bqp50-k.sparse is the negation of Beasley bqp50.txt#k") {
  std::mt19937_64 rng(11);
  for (int k : {1, 2}) {
    const QuboModel biqmac =
        read_model(test::data_path("instances/bqp50-" + std::to_string(k) + ".sparse"));
    ReadOptions options;
    options.instance = k;
    const QuboModel beasley = read_model(test::data_path("instances/bqp50.txt"), options);
    CHECK(beasley.metadata.at("instance") == std::to_string(k));
    for (int t = 0; t < 200; ++t) {
      const Assignment x = random_assignment(50, rng);
      // The matrices are negatives of each other and the senses opposite, so the energies agree.
      CHECK(biqmac.energy(x) == beasley.energy(x));
    }
  }
  // Beasley instance 1 with the published optimum 2098 needs the factor 2 on pairs.
  const QuboModel b1 = read_model(test::data_path("instances/bqp50.txt#1"));
  CHECK(b1.num_variables() == 50);
  CHECK_THROWS_AS((void)read_model(test::data_path("instances/bqp50.txt#11")), InvalidArgument);
  CHECK_THROWS_AS((void)read_model(test::data_path("formats/toy.qubo#2")), InvalidArgument);
}

TEST_CASE("every published solution vector in the shared benchmarks reaches its known value") {
  const fs::path root(QPRUNE_SHARED_BENCHMARKS);
  if (!fs::exists(root / "known_values.csv") || !fs::exists(root / "solutions")) {
    MESSAGE("shared benchmarks not found at " << root.string() << "; check skipped");
    return;
  }
  const auto known = known_values((root / "known_values.csv").string());
  std::map<std::string, QuboModel> cache;
  const auto model = [&](const std::string& path, const std::string& format) -> const QuboModel& {
    auto it = cache.find(path);
    if (it == cache.end()) {
      ReadOptions options;
      options.format = format;
      it = cache.emplace(path, read_model(path, options)).first;
    }
    return it->second;
  };
  int checked = 0;
  for (const auto& entry : fs::recursive_directory_iterator(root / "solutions")) {
    if (entry.path().extension() != ".sol") continue;
    CAPTURE(entry.path().string());
    std::ifstream in(entry.path());
    std::string header;
    std::getline(in, header);
    std::istringstream h(header);
    std::string hash, tag, file, word;
    int instance = 0;
    h >> hash >> tag >> file >> word;
    if (word == "instance") h >> instance;
    REQUIRE(tag == "instance:");
    const std::string family = file.substr(0, file.find('/'));
    const std::string sub = file.substr(0, file.rfind('/'));
    std::string format = "biqmac";
    if (family == "beasley")
      format = "beasley";
    else if (family == "qplib")
      format = "qplib";
    else if (family == "gset" || sub == "biqmac/rudy" || sub == "biqmac/ising")
      format = "maxcut";
    std::string path = (root / file).string();
    if (instance > 0) path += "#" + std::to_string(instance);
    const QuboModel& m = model(path, format);
    const Assignment x = read_solution(entry.path().string(), m.num_variables());
    const std::string name = entry.path().stem().string();
    REQUIRE(known.count(name) == 1);
    CHECK(m.energy(x) == energy_of(known.at(name)));
    ++checked;
    if (format == "beasley") {  // the same vector on the negated Biq Mac copy
      const std::string stem = name.substr(0, name.find('.'));
      const fs::path sparse =
          root / "biqmac/beasley" / (stem + "-" + std::to_string(instance) + ".sparse");
      if (fs::exists(sparse)) {
        CHECK(model(sparse.string(), "biqmac").energy(x) ==
              energy_of(known.at(name)));  // y^T Q y = -V
        ++checked;
      }
    }
  }
  // The QPLIB counting rule, independently of any answer file: QPLIB_5909 is OR-Library bqp250 #8.
  const QuboModel& qplib = model((root / "qplib/QPLIB_5909.qplib").string(), "qplib");
  const QuboModel& bqp = model((root / "beasley/bqp250.txt#8").string(), "beasley");
  std::mt19937_64 rng(5);
  for (int t = 0; t < 100; ++t) {
    const Assignment x = random_assignment(250, rng);
    CHECK(qplib.energy(x) == bqp.energy(x));
  }
  MESSAGE(checked << " published solution vectors checked");
  CHECK(checked >= 183);
}

TEST_CASE(
    "every bad-input fixture gives a ParseError naming the file, the line and what was expected") {
  struct Bad {
    std::string file, format;
    std::int64_t line;
    std::string expected;
  };
  const std::vector<Bad> cases = {
      {"qbsolv_empty.qubo", "", 1, "expected the line 'p qubo"},
      {"qbsolv_garbage.qubo", "", 2, "expected the line 'p qubo"},
      {"qbsolv_count_mismatch.qubo", "", 5, "expected 3 node and 2 coupler lines"},
      {"qbsolv_out_of_range.qubo", "", 3, "expected an index in [0, 3), found '3'"},
      {"qbsolv_lower_triangle.qubo", "", 3, "expected i <= j"},
      {"qbsolv_duplicate.qubo", "", 3, "expected each coupler once"},
      {"qbsolv_nan.qubo", "", 2, "expected a value (a finite number), found 'nan'"},
      {"qbsolv_too_many.qubo", "", 3, "expected at most 0 coupler lines"},
      {"coo_empty.coo", "", 1, "expected at least one line 'u v bias'"},
      {"coo_garbage.coo", "", 2, "expected a bias (a finite number), found 'x'"},
      {"coo_negative_index.coo", "", 2, "expected a variable index in [0, 2^30), found '-1'"},
      {"coo_inf.coo", "", 2, "expected a bias (a finite number), found 'inf'"},
      {"coo_truncated_line.coo", "", 2, "expected a line 'u v bias' (3 fields)"},
      {"mqlib_zero_index.mqlib", "", 3, "expected a 1-based index in [1, 3], found '0'"},
      {"mqlib_truncated.mqlib", "", 4,
       "expected 3 entry lines as the header on line 2 says, not 2"},
      {"mqlib_count_mismatch.mqlib", "", 3, "expected 1 entry lines as the header on line 1 says"},
      {"maxcut_self_loop.gset", "", 3, "expected an edge between two different vertices"},
      {"maxcut_out_of_range.gset", "", 3, "expected a 1-based index in [1, 3], found '4'"},
      {"maxcut_nan.gset", "", 3, "expected a weight (a finite number), found 'NaN'"},
      {"maxcut_bad_header.gset", "", 1, "expected the header line 'n m'"},
      {"beasley_truncated.txt", "", 6,
       "expected row index of entry 2 of 2 of instance 2, found end of file"},
      {"beasley_duplicate.txt", "", 5, "expected each pair once"},
      {"beasley_zero_index.txt", "", 4, "expected a 1-based index in [1, 3], found '0'"},
      {"beasley_extra.txt", "", 4, "expected end of file after 1 instances"},
      {"biqmac_out_of_range.sparse", "", 3, "expected a 1-based index in [1, 3], found '4'"},
      {"biqmac_duplicate.sparse", "", 4, "expected each pair once"},
      {"biqmac_count_mismatch.sparse", "", 3,
       "expected 4 entry lines as the header on line 1 says, not 2"},
      {"biqmac_garbage.sparse", "", 1, "expected the header line 'n m'"},
      {"qplib_non_binary.qplib", "", 2, "expected a binary unconstrained type"},
      {"qplib_truncated.qplib", "", 6, "expected a quadratic entry 'i j v' (2 of 2)"},
      {"qplib_bad_sense.qplib", "", 3,
       "expected the sense 'minimize' or 'maximize', found 'sideways'"},
      {"mtx_bad_banner.mtx", "", 1,
       "expected the banner '%%MatrixMarket matrix coordinate <real|integer>"},
      {"mtx_pattern.mtx", "", 1, "expected the field 'real' or 'integer'"},
      {"mtx_not_square.mtx", "", 2, "expected a square matrix"},
      {"mtx_duplicate.mtx", "", 4, "expected each pair once"},
      {"mtx_out_of_range.mtx", "", 5, "expected a 1-based index in [1, 3], found '4'"},
      {"mtx_truncated.mtx", "", 4, "expected 3 entry lines as the header on line 2 says, not 2"},
      {"json_syntax.json", "", 4, "expected valid JSON"},
      {"json_index_out_of_range.json", "", 4,
       "expected quadratic[0] j (an index in [0, 3)), found 3"},
      {"json_missing_linear.json", "", 1, "expected the key \"linear\""},
      {"json_not_a_number.json", "", 3, "expected linear[1] (a number), found \"two\""},
      {"json_empty.json", "", 1, "expected a JSON object, found end of file"},
      {"json_k_out_of_range.json", "", 4, "expected constraints[0] k in [0, 2], found 4294967297"},
      // Declared sizes far beyond what the file holds are refused before anything is allocated.
      {"qbsolv_declared_huge.qubo", "", 1,
       "expected maxNodes at most 1048944 for a file of 23 bytes"},
      {"qbsolv_declared_couplers.qubo", "", 1,
       "expected nCouplers at most 4101 for a file of 29 bytes"},
      {"coo_index_huge.coo", "", 2,
       "expected a variable index below 1048912 for a file of 21 bytes"},
      {"mqlib_declared_huge.mqlib", "", 1, "expected the number of variables n at most 1048864"},
      {"mqlib_declared_entries.mqlib", "", 1, "expected the number of entries m at most 4099"},
      {"maxcut_declared_huge.gset", "", 2, "expected the number of variables n at most 1049520"},
      {"beasley_declared_huge.txt", "", 2, "expected n of instance 1 at most 1048928"},
      {"biqmac_declared_entries.sparse", "", 1, "expected the number of entries m at most 4099"},
      {"qplib_declared_huge.qplib", "", 4, "expected the number of variables at most 1049856"},
      {"qplib_declared_entries.qplib", "", 5,
       "expected the number of quadratic objective entries at most 4110"},
  };
  for (const Bad& c : cases) {
    CAPTURE(c.file);
    const std::string path = test::data_path("bad/" + c.file);
    ReadOptions options;
    options.format = c.format;
    try {
      (void)read_model(path, options);
      FAIL("no ParseError");
    } catch (const ParseError& e) {
      CHECK(e.path() == path);
      CHECK(e.line() == c.line);
      const std::string what = e.what();
      CHECK(what.find(path + ":" + std::to_string(c.line) + ": " + c.expected) == 0);
    }
  }
  // Every QUBO-format fixture in the folder is covered (solutions are tested in
  // test_solution_io.cpp, checkpoint fixtures in test_safetensors.cpp / test_checkpoint.cpp).
  int fixtures = 0;
  for (const auto& entry : fs::directory_iterator(test::data_path("bad"))) {
    const std::string name = entry.path().filename().string();
    for (const FormatInfo& f : formats())
      if (name.rfind(f.name + "_", 0) == 0) ++fixtures;
  }
  CHECK(fixtures == static_cast<int>(cases.size()));
}

TEST_CASE("read and write report missing files and bad options") {
  CHECK_THROWS_AS((void)read_model(test::data_path("formats/missing.qubo")), IoError);
  ReadOptions bad;
  bad.instance = 0;
  CHECK_THROWS_AS((void)read_model(test::data_path("formats/toy.qubo"), bad), InvalidArgument);
  CHECK_THROWS_AS(write_model(toy(), "/nonexistent-dir/x.qubo"), IoError);
}

TEST_CASE("a hand-written Max-Cut file reads to E = -cut(x) for every x") {
  const std::vector<Coupling> edges = {{0, 1, 1}, {1, 2, 2}, {2, 3, -1}, {3, 0, 3}, {0, 2, 1}};
  const QuboModel m = read_model(test::data_path("formats/square.gset"));
  REQUIRE(m.num_variables() == 4);
  for (std::uint64_t bits = 0; bits < 16; ++bits) {
    const Assignment x = test::bits_to_assignment(bits, 4);
    CHECK(m.energy(x) == -cut_weight(edges, x));
  }
  CHECK(test::brute_force_minimum(m, false) == -6.0);  // {0, 1} vs {2, 3}: 2 + 3 + 1 = 6
}
