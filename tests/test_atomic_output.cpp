// Unit tests of the one output mechanism (qprune/atomic_output.hpp) and the interrupt flag
// (qprune/interrupt.hpp): atomic files (no temporary left, a planted symlink not followed, the old
// content kept on failure), atomic folders (stale files gone, old folder kept on failure, two
// writers), the output/input guard (itself, inside, symlinks, hard links, folder holding an input),
// and the blocked Gram product against Eigen's own, including its interrupt.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "core/interruptible_gram.hpp"
#include "core/rename_flags.hpp"
#include "qprune/atomic_output.hpp"
#include "qprune/error.hpp"
#include "qprune/interrupt.hpp"
#include "tests/test_files.hpp"

namespace fs = std::filesystem;
using qprune::AtomicFile;
using qprune::AtomicFolder;
using qprune::NamedPath;
using qprune::test::slurp;
using qprune::test::spit;
using qprune::test::temp_dir;

namespace {

// Entries of `dir` whose name holds the temporary marker.
int temporaries_in(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(qprune::kTemporaryMarker) != std::string::npos) ++n;
  return n;
}

void guard(const std::vector<NamedPath>& outputs, const std::vector<NamedPath>& inputs,
           const std::vector<NamedPath>& folders = {}) {
  qprune::check_outputs_outside_inputs(outputs, inputs, folders);
}

}  // namespace

TEST_CASE("write_file_atomically replaces the file whole and leaves no temporary") {
  const fs::path dir = temp_dir("atomic_file");
  qprune::write_file_atomically(dir / "a.txt", std::string_view("first"));
  CHECK(slurp(dir / "a.txt") == "first");
  qprune::write_file_atomically(dir / "a.txt", [](std::ostream& out) {
    out << "second";
    for (int i = 0; i < 300000; ++i) out << "0123456789";  // past the 1 MiB buffer
  });
  CHECK(slurp(dir / "a.txt").size() == 6 + 3000000);
  // A failure inside the writer: the old content stays, the temporary is gone.
  CHECK_THROWS_AS(qprune::write_file_atomically(dir / "a.txt",
                                                [](std::ostream& out) {
                                                  out << "partial";
                                                  throw qprune::IoError("disk on fire");
                                                }),
                  qprune::IoError);
  CHECK(slurp(dir / "a.txt").size() == 6 + 3000000);
  CHECK(temporaries_in(dir) == 0);
  // An output that is a symlink: the link is replaced by the file, its target untouched.
  spit(dir / "victim.txt", "keep me");
  fs::create_symlink(dir / "victim.txt", dir / "link.txt");
  qprune::write_file_atomically(dir / "link.txt", std::string_view("new"));
  CHECK(!fs::is_symlink(dir / "link.txt"));
  CHECK(slurp(dir / "link.txt") == "new");
  CHECK(slurp(dir / "victim.txt") == "keep me");
  // The temporary is created with the usual permissions (0666 minus the umask), not 0600.
  const mode_t mask = ::umask(022);
  qprune::write_file_atomically(dir / "perm.txt", std::string_view("x"));
  ::umask(mask);
  CHECK((fs::status(dir / "perm.txt").permissions() & fs::perms::others_read) != fs::perms::none);
  fs::remove_all(dir);
}

TEST_CASE("AtomicFile uses a fresh random name and never follows a planted symlink") {
  const fs::path dir = temp_dir("atomic_planted");
  spit(dir / "victim.txt", "keep me");
  // The old predictable names, planted as links to the victim.
  for (const char* name : {"out.json.tmp-qprune", ".out.json.tmp.1.0", "out.json.qprune-tmp-"})
    fs::create_symlink(dir / "victim.txt", dir / name);
  std::vector<std::string> names;
  for (int i = 0; i < 20; ++i) {
    AtomicFile f(dir / "out.json");
    names.push_back(f.temporary_path().filename().string());
    CHECK(names.back().starts_with("out.json.qprune-tmp-"));
    CHECK(names.back().size() == std::string("out.json.qprune-tmp-").size() + 6);
    CHECK(!fs::is_symlink(f.temporary_path()));
    // Not committed: the destructor removes it.
  }
  std::sort(names.begin(), names.end());
  CHECK(std::unique(names.begin(), names.end()) == names.end());
  qprune::write_file_atomically(dir / "out.json", std::string_view("{}"));
  CHECK(slurp(dir / "victim.txt") == "keep me");
  CHECK(slurp(dir / "out.json") == "{}");
  CHECK(temporaries_in(dir) == 1);  // only the planted "out.json.qprune-tmp-" link
  fs::remove_all(dir);
}

TEST_CASE("AtomicFolder replaces a folder whole, keeps it on failure, and cleans up") {
  const fs::path root = temp_dir("atomic_folder");
  const fs::path target = root / "out";
  {
    AtomicFolder f(target, false);
    CHECK(f.path().parent_path() == root);
    CHECK(f.path().filename().string().starts_with("out.qprune-tmp-"));
    spit(f.path() / "model.safetensors", "old single file");
    spit(f.path() / "sub/x.txt", "x");
    f.commit();
  }
  CHECK(slurp(target / "model.safetensors") == "old single file");
  // Not committed (an error or an interrupt): the old folder is untouched, no temporary left.
  {
    AtomicFolder f(target, true);
    spit(f.path() / "model-00001-of-00002.safetensors", "half");
  }
  CHECK(slurp(target / "model.safetensors") == "old single file");
  CHECK(!fs::exists(target / "model-00001-of-00002.safetensors"));
  CHECK(temporaries_in(root) == 0);
  // Without replace a non-empty target is refused at commit (and the new folder dropped).
  {
    AtomicFolder f(target, false);
    spit(f.path() / "a", "a");
    CHECK_THROWS_AS(f.commit(), qprune::InvalidArgument);
  }
  CHECK(temporaries_in(root) == 0);
  // With replace: the new content only, no stale file of the old one.
  {
    AtomicFolder f(target, true);
    spit(f.path() / "model-00001-of-00002.safetensors", "new shard");
    f.commit();
  }
  CHECK(!fs::exists(target / "model.safetensors"));
  CHECK(!fs::exists(target / "sub"));
  CHECK(slurp(target / "model-00001-of-00002.safetensors") == "new shard");
  CHECK(temporaries_in(root) == 0);
  // An existing empty folder is replaced without `replace`.
  fs::create_directories(root / "empty");
  {
    AtomicFolder f(root / "empty", false);
    spit(f.path() / "a", "a");
    f.commit();
  }
  CHECK(slurp(root / "empty/a") == "a");
  fs::remove_all(root);
}

TEST_CASE("two AtomicFolders into one target: the last commit wins, whole") {
  const fs::path root = temp_dir("atomic_two");
  const fs::path target = root / "out";
  AtomicFolder a(target, true), b(target, true);
  CHECK(a.path() != b.path());
  for (int i = 0; i < 5; ++i) {
    // An lvalue suffix: GCC 12 at -O3 warns falsely (-Wrestrict) on "literal" + std::string&&.
    const std::string n = std::to_string(i);
    spit(a.path() / ("a" + n), "a");
    spit(b.path() / ("b" + n), "b");
  }
  a.commit();
  b.commit();
  int from_a = 0, from_b = 0;
  for (const auto& e : fs::directory_iterator(target))
    (e.path().filename().string()[0] == 'a' ? from_a : from_b)++;
  CHECK(from_a == 0);
  CHECK(from_b == 5);
  CHECK(temporaries_in(root) == 0);
  fs::remove_all(root);
}

TEST_CASE("AtomicFolders committed at once from many threads: all succeed, one wins whole") {
  // Real races on the target between the steps of commit(): every writer must succeed (none may
  // fail because another moved the target between its checks) and the result is one writer's
  // complete folder. Run with the renameat2 flags and with the fallback for file systems without
  // them (where the target is briefly missing between two renames).
  for (const bool flags : {true, false}) {
    CAPTURE(flags);
    qprune::detail::use_rename_flags(flags);
    const fs::path root = temp_dir(flags ? "atomic_race" : "atomic_race_noflags");
    const fs::path target = root / "out";
    constexpr int kWriters = 6, kRounds = 25, kFiles = 4;
    std::atomic<int> failures{0};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w)
      writers.emplace_back([&, w] {
        for (int r = 0; r < kRounds; ++r) {
          try {
            AtomicFolder folder(target, true);
            const std::string tag = std::to_string(w) + "_" + std::to_string(r) + "_";
            for (int f = 0; f < kFiles; ++f) spit(folder.path() / (tag + std::to_string(f)), tag);
            folder.commit();
          } catch (const std::exception&) {
            ++failures;
          }
        }
      });
    for (auto& t : writers) t.join();
    qprune::detail::use_rename_flags(true);
    CHECK(failures.load() == 0);
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(target))
      names.push_back(e.path().filename().string());
    REQUIRE(names.size() == static_cast<size_t>(kFiles));
    const std::string tag = names[0].substr(0, names[0].rfind('_') + 1);
    for (const auto& n : names) CHECK(n.rfind(tag, 0) == 0);  // all from one writer's round
    CHECK(temporaries_in(root) == 0);
    fs::remove_all(root);
  }
}

TEST_CASE("the guard refuses an output that is, or is inside, an input, symlinks resolved") {
  const fs::path root = temp_dir("guard");
  const fs::path ckpt = root / "ckpt";
  spit(ckpt / "config.json", "{}");
  spit(root / "stats.safetensors", "s");
  fs::create_symlink(ckpt, root / "ckpt_link");
  fs::create_symlink(root / "stats.safetensors", root / "stats_link");
  fs::create_hard_link(root / "stats.safetensors", root / "stats_hard");
  const std::vector<NamedPath> inputs = {{"checkpoint", ckpt},
                                         {"--calib", root / "stats.safetensors"}};
  auto refused = [&](const fs::path& out) {
    try {
      guard({{"--output", out}}, inputs);
    } catch (const qprune::InvalidArgument& e) {
      // The message names both paths.
      CHECK(std::string(e.what()).find(out.string()) != std::string::npos);
      return true;
    }
    return false;
  };
  CHECK(refused(ckpt / "config.json"));
  CHECK(refused(ckpt / "new.json"));
  CHECK(refused(ckpt));
  CHECK(refused(ckpt / "."));
  CHECK(refused(root / "x" / ".." / "ckpt" / "config.json"));
  CHECK(refused(root / "ckpt_link" / "config.json"));
  CHECK(refused(root / "stats.safetensors"));
  CHECK(refused(root / "stats_link"));
  CHECK(refused(root / "stats_hard"));
  CHECK_FALSE(refused(root / "masks.json"));
  CHECK_FALSE(refused(root / "ckpt2" / "config.json"));  // a name prefix is not "inside"
  CHECK_FALSE(refused(fs::path()));                      // no output given
  // A folder output that would hold (and so replace) an input is refused; a file output is not.
  CHECK_THROWS_AS(guard({}, inputs, {{"--output", root}}), qprune::InvalidArgument);
  CHECK_NOTHROW(guard({}, inputs, {{"--output", root / "pruned"}}));
  CHECK_NOTHROW(guard({{"--output", root / "pruned.json"}}, {{"--calib", fs::path()}}));
  fs::remove_all(root);
}

TEST_CASE("add_gram_lower equals Eigen's rank update, and stops on the interrupt flag") {
  // Large enough to be blocked (n^2 k > kGramBlockFlops).
  const Eigen::Index n = 700, k = 5000;
  const Eigen::MatrixXd a = Eigen::MatrixXd::Random(n, k);
  Eigen::MatrixXd reference = Eigen::MatrixXd::Zero(n, n);
  reference.selfadjointView<Eigen::Lower>().rankUpdate(a);
  Eigen::MatrixXd g = Eigen::MatrixXd::Zero(n, n);
  qprune::detail::add_gram_lower(g, a, "testing");
  const Eigen::MatrixXd diff = (g - reference).triangularView<Eigen::Lower>();
  CHECK(diff.cwiseAbs().maxCoeff() <= 1e-9 * reference.cwiseAbs().maxCoeff());
  CHECK(g.triangularView<Eigen::StrictlyUpper>().toDenseMatrix().isZero());
  // Small: one rank update, bit for bit.
  const Eigen::MatrixXd small = Eigen::MatrixXd::Random(30, 40);
  Eigen::MatrixXd gs = Eigen::MatrixXd::Zero(30, 30), rs = gs;
  rs.selfadjointView<Eigen::Lower>().rankUpdate(small);
  qprune::detail::add_gram_lower(gs, small, "testing");
  CHECK(gs == rs);

  std::atomic<bool> flag{true};
  qprune::set_interrupt_flag(&flag);
  CHECK(qprune::interrupt_requested());
  CHECK_THROWS_AS(qprune::detail::add_gram_lower(g, a, "testing"), qprune::Interrupted);
  qprune::set_interrupt_flag(nullptr);
  CHECK_FALSE(qprune::interrupt_requested());
}
