// The test-data generators' reference tensors (tests/data/checkpoints/make_tiny_*.py write them
// as F32 / I32 safetensors) read back as flat vectors, for comparing against the forward pass.
#pragma once

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "qprune/checkpoint.hpp"

namespace qprune::test {

/// A tensor of element type T as a flat vector in file (row-major) order.
template <class T>
std::vector<T> flat(const SafetensorsFile& f, const std::string& name) {
  const auto bytes = f.raw_bytes(name);
  REQUIRE(bytes.size() % sizeof(T) == 0);
  std::vector<T> v(bytes.size() / sizeof(T));
  std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

}  // namespace qprune::test
