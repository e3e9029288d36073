// Input files (core/input_file.hpp): a FIFO given as any input is refused at once by
// every reader ("not a regular file (a FIFO)") instead of blocking in open(); gzip input is
// inflated in chunks and refused past a size limit (a "bomb"), while good, multi-member and
// plain files read as before. The FIFO checks run in a child process with an alarm, so a reader
// that blocks fails the test instead of hanging it.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

#include "core/input_file.hpp"
#include "qprune/calibration.hpp"
#include "qprune/calibration_stats.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/comparison.hpp"
#include "qprune/error.hpp"
#include "qprune/formats.hpp"
#include "qprune/masks.hpp"
#include "qprune/model_config.hpp"
#include "tests/test_files.hpp"
#include "tests/test_support.hpp"

using namespace qprune;
namespace fs = std::filesystem;

namespace {

// Runs `f` in a child process that is killed after 10 s. Returns the message of the IoError it
// threw, or a description of anything else (returned normally, other exception, killed).
std::string io_error_in_child(const std::function<void()>& f) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    ::alarm(10);
    std::string result;
    try {
      f();
      result = "no error";
    } catch (const IoError& e) {
      result = e.what();
    } catch (const std::exception& e) {
      result = std::string("other exception: ") + e.what();
    }
    (void)!::write(fds[1], result.data(), result.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char buffer[512];
  for (ssize_t got; (got = ::read(fds[0], buffer, sizeof buffer)) > 0;)
    out.append(buffer, static_cast<std::size_t>(got));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFSIGNALED(status))
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (blocked?)";
  return out;
}

void write_gzip(const fs::path& path, const std::string& text, const char* mode = "wb") {
  gzFile f = gzopen(path.c_str(), mode);
  REQUIRE(f != nullptr);
  if (!text.empty())
    REQUIRE(gzwrite(f, text.data(), static_cast<unsigned>(text.size())) ==
            static_cast<int>(text.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

}  // namespace

TEST_CASE("a FIFO as any input is refused at once, naming the file") {
  const fs::path dir = test::temp_dir("fifo");
  const fs::path fifo = dir / "pipe.qubo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::string p = fifo.string();
  const auto expect_refused = [&](const std::function<void()>& f, const std::string& file) {
    const std::string message = io_error_in_child(f);
    INFO(message);
    CHECK(message.find(file + ": not a regular file (a FIFO)") != std::string::npos);
  };
  expect_refused([&] { (void)detail::InputFile(fifo); }, p);
  expect_refused([&] { (void)detail::read_input_text(fifo); }, p);
  expect_refused([&] { (void)read_model(p); }, p);  // TextInput (gzip or plain)
  ReadOptions coo;
  coo.format = "coo";
  expect_refused([&] { (void)read_model(p, coo); }, p);
  expect_refused([&] { (void)read_solution(p, 3); }, p);
  expect_refused([&] { (void)SafetensorsFile::open(fifo); }, p);  // the mmap reader
  expect_refused([&] { (void)CalibrationStatsFile::open(fifo); }, p);
  expect_refused([&] { (void)ModelConfig::load(p); }, p);  // read_text_file
  expect_refused([&] { (void)read_masks(fifo); }, p);
  expect_refused([&] { (void)read_known_values(p); }, p);
  expect_refused([&] { (void)read_token_ids(fifo, 16); }, p);

  // A FIFO inside a checkpoint folder: config.json, then the shard index, then a shard.
  const fs::path good = test::data_path("checkpoints/tiny-llama-gqa");
  const fs::path ckpt = dir / "ckpt";
  fs::create_directories(ckpt);
  REQUIRE(::mkfifo((ckpt / "config.json").c_str(), 0600) == 0);
  expect_refused([&] { (void)Checkpoint::open(ckpt); }, (ckpt / "config.json").string());
  fs::remove(ckpt / "config.json");
  fs::copy_file(good / "config.json", ckpt / "config.json");
  REQUIRE(::mkfifo((ckpt / "model.safetensors").c_str(), 0600) == 0);
  expect_refused([&] { (void)Checkpoint::open(ckpt); }, (ckpt / "model.safetensors").string());
  fs::remove(ckpt / "model.safetensors");
  REQUIRE(::mkfifo((ckpt / "model.safetensors.index.json").c_str(), 0600) == 0);
  expect_refused([&] { (void)Checkpoint::open(ckpt); },
                 (ckpt / "model.safetensors.index.json").string());

  // Other non-regular files are named too; a regular file still reads.
  CHECK_THROWS_WITH_AS((void)detail::read_input_file(dir),
                       doctest::Contains("not a regular file (a directory)"), IoError);
  CHECK_THROWS_WITH_AS((void)detail::read_input_file(dir / "missing"),
                       doctest::Contains("cannot open for reading"), IoError);
  test::spit(dir / "plain.txt", "abc");
  CHECK(detail::read_input_file(dir / "plain.txt") == "abc");
  test::spit(dir / "empty.txt", "");
  CHECK(detail::read_input_text(dir / "empty.txt").empty());
  fs::remove_all(dir);
}

TEST_CASE("gzip input is inflated in chunks and refused past the limit") {
  const fs::path dir = test::temp_dir("gzip_limit");
  // A bomb: 16 MiB of one repeated line, about 30 KB compressed.
  std::string line = "0 0 1\n";
  std::string big;
  while (big.size() < (std::size_t{16} << 20)) big += line;
  write_gzip(dir / "bomb.qubo.gz", big);
  CHECK(fs::file_size(dir / "bomb.qubo.gz") < 100000);
  const std::string bomb = (dir / "bomb.qubo.gz").string();
  const std::string bomb_message = bomb + ": gzip data inflates to more than 1048576 bytes";
  CHECK_THROWS_WITH_AS((void)detail::read_input_text(bomb, 1 << 20),
                       doctest::Contains(bomb_message.c_str()), ResourceError);
  ReadOptions small;
  small.max_inflated_bytes = 1 << 20;
  CHECK_THROWS_AS((void)read_model(bomb, small), ResourceError);
  // With the limit at the exact size, the same data inflates whole.
  CHECK(detail::read_input_text(bomb, big.size()) == big);

  // A good model still reads through gzip, under the limit and with the default.
  const std::string text = "p qubo 0 3 2 1\n0 0 1.5\n2 2 -1\n0 2 4\n";
  write_gzip(dir / "good.qubo.gz", text);
  ReadOptions tight;
  tight.max_inflated_bytes = text.size();
  const QuboModel m = read_model((dir / "good.qubo.gz").string(), tight);
  CHECK(m.num_variables() == 3);
  CHECK(m.energy({1, 0, 1}) == doctest::Approx(1.5 - 1 + 4));
  CHECK(read_model((dir / "good.qubo.gz").string()).num_variables() == 3);
  tight.max_inflated_bytes = text.size() - 1;
  CHECK_THROWS_AS((void)read_model((dir / "good.qubo.gz").string(), tight), ResourceError);
  tight.max_inflated_bytes = 0;
  CHECK_THROWS_AS((void)read_model((dir / "good.qubo.gz").string(), tight), InvalidArgument);

  // Concatenated members read as one text (gzip -d does so); trailing garbage is ignored.
  write_gzip(dir / "two.gz", "first\n");
  write_gzip(dir / "two.gz", "second\n", "ab");
  CHECK(detail::read_input_text(dir / "two.gz") == "first\nsecond\n");
  std::string with_garbage = test::slurp(dir / "two.gz") + "garbage";
  test::spit(dir / "garbage.gz", with_garbage);
  CHECK(detail::read_input_text(dir / "garbage.gz") == "first\nsecond\n");

  // Truncated or corrupt gzip data is an IoError naming the file.
  const std::string whole = test::slurp(dir / "good.qubo.gz");
  test::spit(dir / "cut.gz", whole.substr(0, whole.size() - 12));
  CHECK_THROWS_WITH_AS((void)detail::read_input_text(dir / "cut.gz"), doctest::Contains("cut.gz"),
                       IoError);
  std::string corrupt = whole;
  corrupt[12] = static_cast<char>(corrupt[12] ^ 0x55);
  corrupt[13] = static_cast<char>(corrupt[13] ^ 0x55);
  test::spit(dir / "corrupt.gz", corrupt);
  CHECK_THROWS_AS((void)detail::read_input_text(dir / "corrupt.gz"), IoError);
  fs::remove_all(dir);
}

TEST_CASE(
    "the default inflated-size limit: 4 GiB, half the memory, 256x the file, or the environment") {
  const char* saved = std::getenv("QPRUNE_MAX_INFLATED_BYTES");
  const std::string saved_value = saved != nullptr ? saved : "";
  ::unsetenv("QPRUNE_MAX_INFLATED_BYTES");
  const std::uint64_t limit = detail::default_inflated_limit_bytes();
  CHECK(limit <= (std::uint64_t{4} << 30));
  CHECK(limit > 0);
  // The ratio rule: 256x the compressed size, at least 256 MiB (a 1 MB bomb of 1 GB is refused).
  const std::uint64_t mib = std::uint64_t{1} << 20;
  CHECK(detail::default_inflated_limit_bytes(1000) == std::min(limit, 256 * mib));
  CHECK(detail::default_inflated_limit_bytes(mib) == std::min(limit, 256 * mib));
  CHECK(detail::default_inflated_limit_bytes(4 * mib) == std::min(limit, 1024 * mib));
  ::setenv("QPRUNE_MAX_INFLATED_BYTES", "12345", 1);
  CHECK(detail::default_inflated_limit_bytes(10) == 12345);
  CHECK(detail::default_inflated_limit_bytes() == 12345);
  ::setenv("QPRUNE_MAX_INFLATED_BYTES", "12k", 1);
  CHECK_THROWS_AS((void)detail::default_inflated_limit_bytes(), InvalidArgument);
  if (saved != nullptr)
    ::setenv("QPRUNE_MAX_INFLATED_BYTES", saved_value.c_str(), 1);
  else
    ::unsetenv("QPRUNE_MAX_INFLATED_BYTES");
}
