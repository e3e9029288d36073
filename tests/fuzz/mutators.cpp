// Structure-aware mutations (see mutators.hpp). Each works on a copy of the input and returns
// nullopt when it does not apply or the result would not fit in max_size; the caller then falls
// back to libFuzzer's byte-level mutation. The scans are linear in the input, so a mutation of a
// 4 MiB input costs about a millisecond next to a run of the reader.
#include "tests/fuzz/mutators.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <vector>

#include "tests/fuzz/fuzz_readers.hpp"

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

namespace qprune::fuzz {
namespace {

std::size_t uniform(Rng& rng, std::size_t n) {  // in [0, n), n > 0
  return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
}
bool one_in(Rng& rng, std::size_t n) { return uniform(rng, n) == 0; }

// A repeat count or depth: small ones often, then the magnitudes that reach the defect classes
// (stack exhaustion near 10^4..10^5 levels under ASan, quadratic passes at 10^4..10^5 items).
// nullopt when not even 2 fit in `limit`.
std::optional<std::size_t> pick_count(Rng& rng, std::size_t limit) {
  static constexpr std::array<std::size_t, 10> kCounts = {2,     3,     8,      64,     1000,
                                                          10000, 50000, 100000, 300000, 1000000};
  std::vector<std::size_t> fitting;
  for (const std::size_t c : kCounts)
    if (c <= limit) fitting.push_back(c);
  if (fitting.empty()) return std::nullopt;
  // Lean to the large end: half the time the largest that fits.
  if (one_in(rng, 2)) return fitting.back();
  return fitting[uniform(rng, fitting.size())];
}

// ---- JSON -----------------------------------------------------------------------------------

// End (one past) of the balanced value that starts with the bracket at `begin`; strings (with
// escapes) are skipped. text.size() if it never closes.
std::size_t value_end(const std::string& text, std::size_t begin) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = begin; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      if (--depth == 0) return i + 1;
    }
  }
  return text.size();
}

// A bracketed value [begin, end) found from a random position (wrapping), or nullopt.
std::optional<std::pair<std::size_t, std::size_t>> random_container(const std::string& text,
                                                                    Rng& rng) {
  if (text.empty()) return std::nullopt;
  const std::size_t start = uniform(rng, text.size());
  std::size_t b = text.find_first_of("[{", start);
  if (b == std::string::npos) b = text.find_first_of("[{");
  if (b == std::string::npos) return std::nullopt;
  return std::make_pair(b, value_end(text, b));
}

// The key of an object member whose value starts at `value_begin` ("key" with its quotes, and
// the text between it and the value), or nullopt for an array element / top-level value.
std::optional<std::pair<std::size_t, std::size_t>> member_key(const std::string& text,
                                                              std::size_t value_begin) {
  std::size_t i = value_begin;
  while (i > 0 && std::isspace(static_cast<unsigned char>(text[i - 1]))) --i;
  if (i == 0 || text[i - 1] != ':') return std::nullopt;
  --i;
  while (i > 0 && std::isspace(static_cast<unsigned char>(text[i - 1]))) --i;
  if (i == 0 || text[i - 1] != '"') return std::nullopt;
  const std::size_t close = i - 1;
  const std::size_t open = text.rfind('"', close == 0 ? 0 : close - 1);
  if (open == std::string::npos || open == close) return std::nullopt;
  return std::make_pair(open, close + 1);
}

// Wraps a value (or the whole text) in N levels of [ ] or {"a": }; a quarter of the time the
// closers are left out (the parser's error path at depth N).
std::optional<std::string> nest(const std::string& text, std::size_t max_size, Rng& rng) {
  std::size_t b = 0, e = text.size();
  if (const auto span = random_container(text, rng); span && !one_in(rng, 4)) {
    b = span->first;
    e = span->second;
  }
  const bool object = one_in(rng, 2);
  const bool close = !one_in(rng, 4);
  const std::string open_unit = object ? "{\"a\":" : "[";
  const std::string close_unit = object ? "}" : "]";
  const std::size_t unit = open_unit.size() + (close ? close_unit.size() : 0);
  const auto depth = pick_count(rng, (max_size - text.size()) / unit);
  if (!depth) return std::nullopt;
  std::string out;
  out.reserve(text.size() + *depth * unit);
  out.append(text, 0, b);
  for (std::size_t i = 0; i < *depth; ++i) out += open_unit;
  out.append(text, b, e - b);
  if (close)
    for (std::size_t i = 0; i < *depth; ++i) out += close_unit;
  out.append(text, e, std::string::npos);
  return out;
}

// Repeats a value K times after itself: as `,"key#i": value` when it is an object member (keys
// unique, so a parser that rejects duplicates still reads them all), as `,value` in an array.
std::optional<std::string> repeat_member(const std::string& text, std::size_t max_size, Rng& rng) {
  const auto span = random_container(text, rng);
  if (!span) return std::nullopt;
  const auto [b, e] = *span;
  const std::string value = text.substr(b, e - b);
  const auto key = member_key(text, b);
  std::string key_text, between;
  if (key) {
    key_text = text.substr(key->first + 1, key->second - key->first - 2);  // without quotes
    between = text.substr(key->second, b - key->second);
  }
  const std::size_t unit = 1 + value.size() + (key ? key_text.size() + between.size() + 10 : 0);
  const auto count = pick_count(rng, (max_size - text.size()) / unit);
  if (!count) return std::nullopt;
  std::string out;
  out.reserve(text.size() + *count * unit);
  out.append(text, 0, e);
  for (std::size_t i = 1; i <= *count; ++i) {
    out += ',';
    if (key) out += "\"" + key_text + "#" + std::to_string(i) + "\"" + between;
    out += value;
  }
  out.append(text, e, std::string::npos);
  return out;
}

// Makes a string or a number L characters longer (L up to 1 MiB).
std::optional<std::string> lengthen_token(const std::string& text, std::size_t max_size, Rng& rng) {
  if (text.empty()) return std::nullopt;
  const bool string = one_in(rng, 2);
  const std::size_t start = uniform(rng, text.size());
  std::size_t at = string ? text.find('"', start) : text.find_first_of("0123456789", start);
  if (at == std::string::npos) at = string ? text.find('"') : text.find_first_of("0123456789");
  if (at == std::string::npos) return std::nullopt;
  const auto length = pick_count(rng, max_size - text.size());
  if (!length) return std::nullopt;
  std::string out = text;
  out.insert(at + 1, *length, string ? 'a' : '9');
  return out;
}

// Numbers a reader must refuse or carry without overflow.
constexpr std::array<std::string_view, 16> kEdgeNumbers = {"2147483647",
                                                           "2147483648",
                                                           "4294967296",
                                                           "9223372036854775807",
                                                           "-1",
                                                           "-2147483649",
                                                           "18446744073709551616",
                                                           "1e308",
                                                           "1e400",
                                                           "-0",
                                                           "0.5",
                                                           "100000000",
                                                           "1000000000",
                                                           "65536",
                                                           "46341",
                                                           "3037000500"};

// Replaces the number token around a random digit with an edge number.
std::optional<std::string> edge_number(const std::string& text, Rng& rng) {
  if (text.empty()) return std::nullopt;
  std::size_t at = text.find_first_of("0123456789", uniform(rng, text.size()));
  if (at == std::string::npos) at = text.find_first_of("0123456789");
  if (at == std::string::npos) return std::nullopt;
  const auto is_num = [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.' ||
           c == 'e' || c == 'E';
  };
  std::size_t b = at, e = at;
  while (b > 0 && is_num(text[b - 1])) --b;
  while (e < text.size() && is_num(text[e])) ++e;
  std::string out = text;
  out.replace(b, e - b, kEdgeNumbers[uniform(rng, kEdgeNumbers.size())]);
  return out;
}

// ---- gzip -----------------------------------------------------------------------------------

// The inflated text of every gzip member, at most `cap` bytes; nullopt if `bytes` is not gzip.
std::optional<std::string> inflate_capped(const std::string& bytes, std::size_t cap) {
  if (bytes.size() < 2 || static_cast<unsigned char>(bytes[0]) != 0x1f ||
      static_cast<unsigned char>(bytes[1]) != 0x8b)
    return std::nullopt;
  std::string out;
  z_stream z{};
  if (inflateInit2(&z, 15 + 32) != Z_OK) return std::nullopt;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  std::array<char, 1 << 16> buffer;
  while (out.size() < cap) {
    z.next_out = reinterpret_cast<Bytef*>(buffer.data());
    z.avail_out = buffer.size();
    const int rc = inflate(&z, Z_NO_FLUSH);
    out.append(buffer.data(), buffer.size() - z.avail_out);
    if (rc == Z_STREAM_END) {
      if (z.avail_in == 0) break;
      inflateReset(&z);  // next member
    } else if (rc != Z_OK) {
      break;  // corrupt or truncated: keep what inflated
    }
  }
  inflateEnd(&z);
  if (out.size() > cap) out.resize(cap);
  return out;
}

// One gzip member of `text` followed by `repeat` more bytes of `fill` (streamed, never held).
std::string deflate_member(std::string_view text, std::uint64_t repeat = 0, char fill = '\n',
                           int level = 6) {
  z_stream z{};
  // Z_RLE for a long run: as small as the default strategy, four times faster.
  deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 9, repeat > 0 ? Z_RLE : Z_DEFAULT_STRATEGY);
  std::string out;
  std::array<char, 1 << 16> buffer;
  const std::string chunk(std::size_t{1} << 20, fill);
  const auto pump = [&](const char* data, std::size_t size, int flush) {
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
    z.avail_in = static_cast<uInt>(size);
    for (;;) {
      z.next_out = reinterpret_cast<Bytef*>(buffer.data());
      z.avail_out = buffer.size();
      const int rc = deflate(&z, flush);
      out.append(buffer.data(), buffer.size() - z.avail_out);
      if (flush == Z_FINISH ? rc == Z_STREAM_END || rc < 0 : z.avail_out != 0) break;
    }
  };
  pump(text.data(), text.size(), Z_NO_FLUSH);
  for (std::uint64_t left = repeat; left > 0;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
    pump(chunk.data(), n, Z_NO_FLUSH);
    left -= n;
  }
  pump(nullptr, 0, Z_FINISH);
  deflateEnd(&z);
  return out;
}

// A member that inflates to 1.5 GiB of newlines (about 1.5 MB), built once per process (a few
// seconds): far beyond the fuzzer's malloc limit once a reader holds it as one string.
const std::string& bomb_member() {
  static const std::string member = deflate_member("", std::uint64_t{3} << 29, '\n', 9);
  return member;
}

}  // namespace

std::string byte_mutate(std::string text, std::size_t max_size) {
  const std::size_t size = text.size();
  // Room to grow by a libFuzzer step; not the whole max_size (a 4 MiB buffer per call).
  const std::size_t cap = std::max(size, std::min(max_size, size + (std::size_t{1} << 16)));
  text.resize(std::max<std::size_t>(cap, 1));
  const std::size_t n = LLVMFuzzerMutate(reinterpret_cast<std::uint8_t*>(text.data()), size,
                                         std::max<std::size_t>(cap, 1));
  text.resize(n);
  return text;
}

std::optional<std::string> mutate_json(const std::string& text, std::size_t max_size, Rng& rng) {
  switch (uniform(rng, 4)) {
    case 0:
      return nest(text, max_size, rng);
    case 1:
      return repeat_member(text, max_size, rng);
    case 2:
      return lengthen_token(text, max_size, rng);
    default:
      return edge_number(text, rng);
  }
}

std::optional<std::string> mutate_safetensors(const std::string& bytes, std::size_t max_size,
                                              Rng& rng) {
  if (bytes.size() < 8 || max_size < 8) return std::nullopt;
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  const std::size_t header_size =
      n <= bytes.size() - 8 ? static_cast<std::size_t>(n) : bytes.size() - 8;
  const std::string header = bytes.substr(8, header_size);
  const std::string data = bytes.substr(8 + header_size);
  if (data.size() + 8 > max_size) return std::nullopt;
  const std::size_t header_max = max_size - 8 - data.size();
  std::optional<std::string> mutated =
      one_in(rng, 2) ? mutate_json(header, header_max, rng) : byte_mutate(header, header_max);
  if (!mutated || mutated->size() > header_max) return std::nullopt;
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[static_cast<std::size_t>(i)] = static_cast<char>((mutated->size() >> (8 * i)) & 0xff);
  out += *mutated;
  out += data;
  return out;
}

std::optional<std::string> mutate_text(const std::string& text, std::size_t max_size, Rng& rng) {
  // Line starts (and the text's end as a sentinel).
  std::vector<std::size_t> starts = {0};
  for (std::size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\n' && i + 1 < text.size()) starts.push_back(i + 1);
  const auto line_end = [&](std::size_t line) {
    return line + 1 < starts.size() ? starts[line + 1] : text.size();
  };
  switch (uniform(rng, 3)) {
    case 0: {  // a declared size: an integer of the first five lines with digits, made huge
      std::vector<std::pair<std::size_t, std::size_t>> numbers;
      int lines_seen = 0;
      for (std::size_t l = 0; l < starts.size() && lines_seen < 5; ++l) {
        bool any = false;
        for (std::size_t i = starts[l]; i < line_end(l);) {
          if (std::isdigit(static_cast<unsigned char>(text[i]))) {
            std::size_t e = i;
            while (e < line_end(l) && std::isdigit(static_cast<unsigned char>(text[e]))) ++e;
            numbers.emplace_back(i, e);
            any = true;
            i = e;
          } else {
            ++i;
          }
        }
        lines_seen += any ? 1 : 0;
      }
      if (numbers.empty()) return std::nullopt;
      const auto [b, e] = numbers[uniform(rng, numbers.size())];
      std::string out = text;
      out.replace(b, e - b, kEdgeNumbers[uniform(rng, kEdgeNumbers.size())]);
      return out.size() <= max_size ? std::optional(out) : std::nullopt;
    }
    case 1: {  // a block of 1-3 lines repeated K times after itself
      const std::size_t first = uniform(rng, starts.size());
      const std::size_t last = std::min(starts.size() - 1, first + uniform(rng, 3));
      std::string block = text.substr(starts[first], line_end(last) - starts[first]);
      if (block.empty()) return std::nullopt;
      if (block.back() != '\n') block += '\n';
      const auto count = pick_count(rng, (max_size - text.size()) / block.size());
      if (!count) return std::nullopt;
      std::string out;
      out.reserve(text.size() + *count * block.size());
      out.append(text, 0, line_end(last));
      if (!out.empty() && out.back() != '\n') out += '\n';
      for (std::size_t i = 0; i < *count; ++i) out += block;
      out.append(text, line_end(last), std::string::npos);
      return out.size() <= max_size ? std::optional(out) : std::nullopt;
    }
    default:
      return lengthen_token(text, max_size, rng);
  }
}

std::optional<std::string> mutate_gzip(const std::string& bytes, std::size_t max_size, Rng& rng) {
  const std::optional<std::string> plain = inflate_capped(bytes, std::size_t{1} << 20);
  if (one_in(rng, 6)) {  // a bomb member after what is there (gzip readers read every member)
    const std::string& bomb = bomb_member();
    const std::string head = plain ? bytes : deflate_member(bytes);
    if (head.size() + bomb.size() > max_size) return std::nullopt;
    return head + bomb;
  }
  const std::string text = plain ? *plain : bytes;
  std::optional<std::string> mutated =
      one_in(rng, 2) ? mutate_text(text, std::size_t{1} << 22, rng) : byte_mutate(text, 1 << 20);
  if (!mutated) return std::nullopt;
  std::string out = deflate_member(*mutated);
  return out.size() <= max_size ? std::optional(out) : std::nullopt;
}

std::optional<std::string> mutate_checkpoint(const std::string& bytes, std::size_t max_size,
                                             Rng& rng) {
  std::vector<std::string> parts = split_checkpoint_input(bytes);
  if (parts.size() < 2) return std::nullopt;
  const std::size_t i = uniform(rng, parts.size());
  if (one_in(rng, 16) && parts.size() > 2) {  // a shard dropped or duplicated
    if (one_in(rng, 2)) {
      parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(std::max<std::size_t>(i, 2)));
    } else if (parts.size() < 4) {
      parts.push_back(parts.back());
    }
  } else {
    std::size_t others = 0;
    for (std::size_t k = 0; k < parts.size(); ++k)
      if (k != i) others += parts[k].size() + kCheckpointPartSeparator.size();
    if (others >= max_size) return std::nullopt;
    const std::size_t part_max = max_size - others;
    std::optional<std::string> mutated;
    if (one_in(rng, 2)) {
      mutated = i < 2 ? mutate_json(parts[i], part_max, rng)
                      : mutate_safetensors(parts[i], part_max, rng);
    } else {
      mutated = byte_mutate(parts[i], part_max);
    }
    if (!mutated) return std::nullopt;
    parts[i] = std::move(*mutated);
  }
  std::string out;
  for (std::size_t k = 0; k < parts.size(); ++k) {
    if (k > 0) out += kCheckpointPartSeparator;
    out += parts[k];
  }
  return out.size() <= max_size ? std::optional(out) : std::nullopt;
}

std::optional<std::string> mutate(std::string_view target, const std::string& input,
                                  std::size_t max_size, Rng& rng) {
  if (target == "json" || target == "masks" || target == "config" || target == "index" ||
      target == "solution")
    return one_in(rng, 4) ? mutate_json(input, max_size, rng) : std::nullopt;
  if (target == "safetensors" || target == "calibration")
    return one_in(rng, 3) ? mutate_safetensors(input, max_size, rng) : std::nullopt;
  if (target == "gzip") return one_in(rng, 3) ? std::nullopt : mutate_gzip(input, max_size, rng);
  if (target == "checkpoint")
    return one_in(rng, 4) ? std::nullopt : mutate_checkpoint(input, max_size, rng);
  return one_in(rng, 4) ? mutate_text(input, max_size, rng) : std::nullopt;
}

}  // namespace qprune::fuzz
