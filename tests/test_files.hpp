// File helpers shared by the tests that build checkpoints on disk: a fresh temporary folder, whole
// file read/write, and a hash of a folder's files (to show an input folder was left unchanged).
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace qprune::test {

/// An empty folder under the system temporary directory, unique per call.
inline std::filesystem::path temp_dir(const std::string& name) {
  const std::filesystem::path p =
      std::filesystem::temp_directory_path() /
      ("qprune_test_" + name + "_" + std::to_string(std::random_device{}()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void spit(const std::filesystem::path& p, const std::string& s) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

/// FNV-1a over every file's relative path and content, in sorted order.
inline std::uint64_t hash_folder(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(std::filesystem::relative(e.path(), dir));
  std::sort(files.begin(), files.end());
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  };
  for (const std::filesystem::path& f : files) {
    mix(f.string());
    mix(slurp(dir / f));
  }
  return h;
}

}  // namespace qprune::test
