// A small byte encoding for job results that a JobRunner moves between processes (layer masks,
// comparison run records): fixed-size values copied bit for bit (doubles keep every bit, NaN
// included), strings and vectors with a 64-bit length. Both ends are the same program on the same
// architecture, so no byte-order conversion is needed.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "qprune/error.hpp"

namespace qprune::detail {

class ByteWriter {
 public:
  template <class T>
  requires std::is_arithmetic_v<T>
  void put(T value) { out_.append(reinterpret_cast<const char*>(&value), sizeof value); }
  void put(const std::string& s) {
    put(static_cast<std::uint64_t>(s.size()));
    out_ += s;
  }
  template <class T>
  void put(const std::vector<T>& v) {
    put(static_cast<std::uint64_t>(v.size()));
    for (const T& x : v) put(x);
  }
  template <class K, class V>
  void put(const std::map<K, V>& m) {
    put(static_cast<std::uint64_t>(m.size()));
    for (const auto& [k, v] : m) {
      put(k);
      put(v);
    }
  }
  [[nodiscard]] std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class ByteReader {
 public:
  explicit ByteReader(const std::string& bytes) : bytes_(bytes) {}

  template <class T>
  requires std::is_arithmetic_v<T>
  void get(T& value) {
    need(sizeof value);
    std::memcpy(&value, bytes_.data() + pos_, sizeof value);
    pos_ += sizeof value;
  }
  void get(std::string& s) {
    const std::size_t n = length();
    need(n);
    s.assign(bytes_, pos_, n);
    pos_ += n;
  }
  template <class T>
  void get(std::vector<T>& v) {
    v.resize(length());
    for (T& x : v) get(x);
  }
  template <class K, class V>
  void get(std::map<K, V>& m) {
    m.clear();
    for (std::size_t n = length(); n > 0; --n) {
      K k;
      V v;
      get(k);
      get(v);
      m.emplace(std::move(k), std::move(v));
    }
  }
  template <class T>
  [[nodiscard]] T get() {
    T value{};
    get(value);
    return value;
  }

 private:
  std::size_t length() {
    std::uint64_t n = 0;
    get(n);
    return static_cast<std::size_t>(n);
  }
  void need(std::size_t n) const {
    if (n > bytes_.size() - pos_)
      throw Error("corrupt job result: needs " + std::to_string(n) + " more bytes, has " +
                  std::to_string(bytes_.size() - pos_));
  }
  const std::string& bytes_;
  std::size_t pos_ = 0;
};

}  // namespace qprune::detail
