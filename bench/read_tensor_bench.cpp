// Throughput of reading tensors out of a safetensors file (SafetensorsFile::read_matrix_f32 and
// raw_bytes), for BENCHMARKS.md: how much the bounds-checked pread() reader costs against the
// memory map it replaced. `make` writes a synthetic shard (one BF16 and one F32 weight matrix,
// finite values of a fixed pattern) in chunks; `read` reads every tensor `--repeat` times with a
// warm page cache and prints MB/s of tensor bytes per way of reading, by the best CPU time of this
// thread (user + system: page faults and copies count, waiting for a busy machine does not).
//
//   read_tensor_bench make /tmp/shard.safetensors --mb 512
//   read_tensor_bench read /tmp/shard.safetensors --repeat 3
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "qprune/checkpoint.hpp"

namespace {

// Writes [rows, cols] BF16 "w.bf16" and F32 "w.f32" tensors of about mb / 2 MB each.
void make(const std::string& path, std::int64_t mb) {
  const std::int64_t cols = 4096;
  const std::int64_t bf16_rows = mb * (1 << 20) / 2 / (cols * 2);
  const std::int64_t f32_rows = mb * (1 << 20) / 2 / (cols * 4);
  const std::uint64_t bf16_bytes = static_cast<std::uint64_t>(bf16_rows * cols * 2);
  const std::uint64_t f32_bytes = static_cast<std::uint64_t>(f32_rows * cols * 4);
  std::string header = "{\"w.bf16\":{\"dtype\":\"BF16\",\"shape\":[" + std::to_string(bf16_rows) +
                       "," + std::to_string(cols) + "],\"data_offsets\":[0," +
                       std::to_string(bf16_bytes) + "]},\"w.f32\":{\"dtype\":\"F32\",\"shape\":[" +
                       std::to_string(f32_rows) + "," + std::to_string(cols) +
                       "],\"data_offsets\":[" + std::to_string(bf16_bytes) + "," +
                       std::to_string(bf16_bytes + f32_bytes) + "]}}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const std::uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);  // little-endian host
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  std::vector<char> chunk(1 << 20);
  auto fill = [&](std::uint64_t bytes, int element) {
    for (std::size_t i = 0; i < chunk.size(); i += static_cast<std::size_t>(element)) {
      const float f = static_cast<float>(static_cast<int>(i % 257) - 128) / 64.0f;
      std::uint32_t bits = 0;
      std::memcpy(&bits, &f, 4);
      if (element == 2) {
        const auto hi = static_cast<std::uint16_t>(bits >> 16);
        std::memcpy(chunk.data() + i, &hi, 2);
      } else {
        std::memcpy(chunk.data() + i, &bits, 4);
      }
    }
    for (std::uint64_t done = 0; done < bytes; done += chunk.size())
      out.write(chunk.data(),
                static_cast<std::streamsize>(std::min<std::uint64_t>(chunk.size(), bytes - done)));
  };
  fill(bf16_bytes, 2);
  fill(f32_bytes, 4);
  if (!out) throw std::runtime_error(path + ": write failed");
}

void read(const std::string& path, int repeat) {
  const qprune::SafetensorsFile f = qprune::SafetensorsFile::open(path);
  auto cpu_s = [] {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
  };
  for (const std::string& name : f.tensor_names()) {
    const double mb = static_cast<double>(f.info(name).num_bytes()) / (1 << 20);
    double best_matrix = 1e300, best_raw = 1e300;
    double sink = 0.0;
    for (int r = 0; r < repeat; ++r) {
      double t0 = cpu_s();
      const Eigen::MatrixXf m = f.read_matrix_f32(name);
      sink += static_cast<double>(m(0, 0));
      double t1 = cpu_s();
      best_matrix = std::min(best_matrix, t1 - t0);
      t0 = cpu_s();
      const auto raw = f.raw_bytes(name);  // a span into the map before, an owned copy now
      std::uint64_t sum = 0;
      for (std::size_t i = 0; i < raw.size(); i += 4096) sum += static_cast<unsigned char>(raw[i]);
      sink += static_cast<double>(sum);
      t1 = cpu_s();
      best_raw = std::min(best_raw, t1 - t0);
    }
    std::printf("%-8s %s %8.1f MB  read_matrix_f32 %8.1f MB/s  raw_bytes %8.1f MB/s  (sink %g)\n",
                name.c_str(), qprune::dtype_name(f.info(name).dtype), mb, mb / best_matrix,
                mb / best_raw, sink);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: read_tensor_bench make PATH [--mb N] | read PATH [--repeat N]\n";
    return 2;
  }
  const std::string mode = argv[1], path = argv[2];
  std::int64_t mb = 512;
  int repeat = 3;
  for (int a = 3; a + 1 < argc; a += 2) {
    if (std::string(argv[a]) == "--mb") mb = std::stoll(argv[a + 1]);
    if (std::string(argv[a]) == "--repeat") repeat = std::stoi(argv[a + 1]);
  }
  if (mode == "make") {
    make(path, mb);
  } else {
    read(path, repeat);
  }
  return 0;
}
