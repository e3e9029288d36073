// The bulk fast path of the triplet formats (problems/formats/triplet_scan.hpp): numbers convert
// bit for bit as strtod does (glibc's strtod is correctly rounded: an independent reference), the
// fast and the line-by-line readers give bit-identical models for every triplet format on files
// with shuffled, duplicated, lower-triangle entries, blank lines, tabs and CRLF, the fast path is
// really taken on plain files, and errors in large files (scanned in parallel chunks) still name
// the right line.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "problems/formats/format_entry.hpp"
#include "problems/formats/triplet_scan.hpp"
#include "qprune/error.hpp"
#include "qprune/formats.hpp"

using namespace qprune;
namespace fs = std::filesystem;
using formats_detail::parse_number;

namespace {

fs::path temp_file(const std::string& name, const std::string& text) {
  const fs::path dir = fs::temp_directory_path() / "qprune_test_triplet_scan";
  fs::create_directories(dir);
  const fs::path path = dir / name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::uint64_t bits(double v) {
  std::uint64_t b = 0;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

// Reads `path` once with the fast path allowed and once with the line-by-line reader only.
struct TwoReads {
  QuboModel fast, checked;
  bool took_fast_path = false;
};
TwoReads read_both(const fs::path& path, const std::string& format = "") {
  ReadOptions options;
  options.format = format;
  TwoReads r;
  formats_detail::set_fast_readers(false);
  r.checked = read_model(path.string(), options);
  formats_detail::set_fast_readers(true);
  const std::int64_t before = formats_detail::fast_reads();
  r.fast = read_model(path.string(), options);
  r.took_fast_path = formats_detail::fast_reads() == before + 1;
  return r;
}

void check_bit_identical(const QuboModel& a, const QuboModel& b) {
  REQUIRE(a.num_variables() == b.num_variables());
  CHECK(bits(a.offset()) == bits(b.offset()));
  CHECK(a.num_couplings() == b.num_couplings());
  CHECK(a.storage() == b.storage());
  int differ = 0;
  for (int i = 0; i < a.num_variables(); ++i) {
    differ += bits(a.linear()[i]) != bits(b.linear()[i]);
    for (int j = i + 1; j < a.num_variables(); ++j)
      differ += bits(a.coupling(i, j)) != bits(b.coupling(i, j));
  }
  CHECK(differ == 0);
}

// A number in one of the shapes files hold: integers, short and long decimals, exponents.
std::string random_number(std::mt19937_64& rng) {
  std::uniform_int_distribution<int> shape(0, 7), digits(1, 21), sign(0, 3);
  std::string s = sign(rng) == 0 ? "-" : "";
  const auto digit_run = [&](int k) {
    std::string d;
    for (int t = 0; t < k; ++t) d += static_cast<char>('0' + rng() % 10);
    return d;
  };
  switch (shape(rng)) {
    case 0:
      return s + digit_run(digits(rng) % 4 + 1);  // -100..100 style
    case 1:
      return s + digit_run(digits(rng));  // long integers, past 2^53
    case 2:
      return s + digit_run(digits(rng) % 3 + 1) + "." + digit_run(digits(rng) % 8 + 1);
    case 3:
      return s + digit_run(digits(rng)) + "." + digit_run(digits(rng));  // past 19 digits
    case 4:
      return s + "0." + std::string(rng() % 25, '0') + digit_run(digits(rng) % 6 + 1);
    case 5:
      return s + digit_run(3) + "e" + std::to_string(static_cast<int>(rng() % 40) - 20);
    case 6: {
      char buffer[40];
      std::snprintf(buffer, sizeof buffer, "%.17g",
                    std::uniform_real_distribution<double>(-1e6, 1e6)(rng));
      return buffer;
    }
    default:
      return s + digit_run(1) + "." + digit_run(22);  // 22 digits after the point
  }
}

}  // namespace

TEST_CASE("parse_number converts bit for bit as strtod does, and refuses what to_double refuses") {
  std::mt19937_64 rng(17);
  int checked = 0;
  for (int t = 0; t < 200000; ++t) {
    const std::string s = random_number(rng);
    CAPTURE(s);
    const std::optional<double> v = parse_number(s);
    REQUIRE(v.has_value());
    CHECK(bits(*v) == bits(std::strtod(s.c_str(), nullptr)));
    ++checked;
  }
  CHECK(checked == 200000);
  // Edge cases of the shortcut: the sign of zero, the last exact mantissa and the first inexact.
  for (const char* s :
       {"-0", "0", "-0.0", "9007199254740992", "9007199254740993", "-9007199254740993.5", "0.1",
        "1.", "+1", "+-1", "1e5", "0.30000000000000004", "1234567890123456789",
        "12345678901234567890", "4.9e-324", "1.7976931348623157e308"}) {
    CAPTURE(s);
    const std::optional<double> v = parse_number(s);
    REQUIRE(v.has_value());
    const char* from = s[0] == '+' ? s + 1 : s;
    CHECK(bits(*v) == bits(std::strtod(from, nullptr)));
  }
  for (const char* s :
       {"", "-", ".", "nan", "inf", "-inf", "1e400", "1x", "1.2.3", "0x10", "++1", " 1"}) {
    CAPTURE(s);
    CHECK_FALSE(parse_number(s).has_value());
  }
}

TEST_CASE("fast and line-by-line readers give bit-identical models in every triplet format") {
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<int> pick(0, 9);
  for (int round = 0; round < 6; ++round) {
    const int n = 3 + static_cast<int>(rng() % 40);
    CAPTURE(round);
    // Entries of an upper triangle with diagonal, some left out, in shuffled order.
    std::vector<std::array<int, 2>> pairs;
    for (int i = 0; i < n; ++i)
      for (int j = i; j < n; ++j)
        if (pick(rng) < 6) pairs.push_back({i, j});
    std::shuffle(pairs.begin(), pairs.end(), rng);
    std::vector<std::string> values;
    for (std::size_t k = 0; k < pairs.size(); ++k) values.push_back(random_number(rng));
    const auto sep = [&] { return std::string(pick(rng) < 2 ? "\t " : " "); };
    const auto eol = [&] {
      return std::string(pick(rng) < 2 ? " \r\n" : pick(rng) < 1 ? "\n\n" : "\n");
    };
    const auto lines = [&](int base, bool swap_some) {
      std::string body;
      for (std::size_t k = 0; k < pairs.size(); ++k) {
        int a = pairs[k][0] + base, b = pairs[k][1] + base;
        if (swap_some && pick(rng) < 3) std::swap(a, b);
        body += std::to_string(a) + sep() + std::to_string(b) + sep() + values[k] + eol();
      }
      return body;
    };
    const std::string count = std::to_string(pairs.size());
    std::int64_t nodes = 0;
    for (const auto& p : pairs) nodes += p[0] == p[1];
    const std::string qbsolv =
        "c offset=2.5\np qubo 0 " + std::to_string(n) + " " + std::to_string(nodes) + " " +
        std::to_string(static_cast<std::int64_t>(pairs.size()) - nodes) + "\n" + lines(0, false);
    // COO: both orders of a pair and a repeated pair add up.
    std::string coo_body = lines(0, true);
    coo_body += "0 1 0.25\n1 0 0.5\n0 1 -1e-3\n";
    const std::string coo = "# vartype=BINARY\n# offset=-1.5\n" + coo_body;
    const std::string coo_spin = "# vartype=SPIN\n" + coo_body;
    const std::string mqlib =
        "# offset=3\n" + std::to_string(n) + " " + count + "\n" + lines(1, true);
    const std::string biqmac = std::to_string(n) + " " + count + "\n" + lines(1, true);
    const std::string beasley =
        "2\n3 2\n1 1 4\n2 3 -1\n" + std::to_string(n) + " " + count + "\n" + lines(1, true);
    struct Case {
      std::string name, text, format;
    };
    std::vector<Case> cases = {{"a.qubo", qbsolv, ""},   {"a.coo", coo, ""},
                               {"s.coo", coo_spin, ""},  {"a.mqlib", mqlib, ""},
                               {"a.sparse", biqmac, ""}, {"a.txt#2", beasley, "beasley"}};
    // Max-Cut needs edges between different vertices: drop the diagonal lines.
    std::string maxcut_body;
    std::int64_t edges = 0;
    for (std::size_t k = 0; k < pairs.size(); ++k)
      if (pairs[k][0] != pairs[k][1]) {
        maxcut_body += std::to_string(pairs[k][1] + 1) + " " + std::to_string(pairs[k][0] + 1) +
                       " " + values[k] + "\n";
        ++edges;
      }
    cases.push_back(
        {"a.gset", std::to_string(n) + " " + std::to_string(edges) + "\n" + maxcut_body, ""});
    for (const Case& c : cases) {
      CAPTURE(c.name);
      const std::string file = c.name.substr(0, c.name.find('#'));
      const fs::path path = temp_file(file, c.text);
      const std::string suffix =
          c.name.find('#') == std::string::npos ? "" : c.name.substr(c.name.find('#'));
      const TwoReads r = read_both(path.string() + suffix, c.format);
      CHECK(r.took_fast_path);
      check_bit_identical(r.fast, r.checked);
    }
  }
}

TEST_CASE("a file the fast path does not take is still read, by the line-by-line reader") {
  // A comment among the entries, a sign on an index, entries split over lines (Beasley).
  const std::vector<std::pair<std::string, std::string>> files = {
      {"mid.qubo", "p qubo 0 3 1 1\n0 0 1\nc offset=4\n0 2 -2\n"},
      {"sign.coo", "+0 1 2.5\n1 1 3\n"},
      {"split.txt", "1\n3 2\n1 1\n4 2 3 -1\n"},
      {"comment.mqlib", "3 1\n1 2 5 # an entry\n"}};
  for (const auto& [name, text] : files) {
    CAPTURE(name);
    const TwoReads r = read_both(temp_file(name, text));
    CHECK_FALSE(r.took_fast_path);
    check_bit_identical(r.fast, r.checked);
  }
  const QuboModel mid = read_model(temp_file("mid.qubo", files[0].second).string());
  CHECK(mid.offset() == 4.0);
  CHECK(mid.coupling(0, 2) == -2.0);
}

TEST_CASE("errors in a large file, scanned in parallel chunks, name the right line") {
  // n = 1500 dense: ~1.1 M lines, ~12 MB, so the scan runs in chunks (threads permitting).
  const int n = 1500;
  std::string text = "p qubo 0 1500 0 " + std::to_string(n * (n - 1) / 2) + "\n";
  std::int64_t line = 1;
  std::int64_t bad_line = 0;
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) {
      ++line;
      const bool bad = i == 1200 && j == 1300;
      if (bad) bad_line = line;
      text += std::to_string(i) + " " + std::to_string(j) + " " + (bad ? "1.5.2" : "-7") + "\n";
    }
  const fs::path path = temp_file("big_bad.qubo", text);
  for (const bool fast : {true, false}) {
    formats_detail::set_fast_readers(fast);
    try {
      (void)read_model(path.string());
      FAIL("no ParseError");
    } catch (const ParseError& e) {
      CHECK(e.line() == bad_line);
      CHECK(std::string(e.what()).find("expected a value (a finite number), found '1.5.2'") !=
            std::string::npos);
    }
  }
  formats_detail::set_fast_readers(true);
  // The same file without the error reads, through the fast path.
  text.replace(text.find("1.5.2"), 5, "-7.0e0");
  const TwoReads r = read_both(temp_file("big_good.qubo", text));
  CHECK(r.took_fast_path);
  CHECK(r.fast.num_couplings() == std::int64_t{n} * (n - 1) / 2);
  check_bit_identical(r.fast, r.checked);
}

TEST_CASE(
    "a large .txt file is sniffed from its first 1 MiB, or whole when its first line is later") {
  // Beasley (first line: one token) and Max-Cut (two tokens) of a few MB, and one whose first
  // content line comes after 1.5 MB of comments, so the prefix does not hold it.
  std::string beasley = "1\n2000 ";
  std::string body;
  std::int64_t entries = 0;
  for (int i = 1; i <= 2000; ++i)
    for (int j = i; j <= 2000; j += 7, ++entries)
      body += std::to_string(i) + " " + std::to_string(j) + " " + std::to_string(i - j) + "\n";
  beasley += std::to_string(entries) + "\n" + body;
  REQUIRE(beasley.size() > (std::size_t{2} << 20));
  CHECK(detect_format(temp_file("big.txt", beasley).string()) == "beasley");
  std::string comments;
  while (comments.size() < 1500000) comments += "# a comment line of some length, to fill space\n";
  CHECK(detect_format(temp_file("late.txt", comments + "3 1\n1 2 5\n").string()) == "maxcut");
  const QuboModel m = read_model(temp_file("late.txt", comments + "3 1\n1 2 5\n").string());
  CHECK(m.coupling(0, 1) == 10.0);
}
