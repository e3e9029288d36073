// UTF-8 decoding, character classes and NFC for the tokenizer (see unicode_text.hpp). NFC is the
// algorithm of Unicode Standard Annex #15: full canonical decomposition (Hangul algorithmically),
// canonical ordering of combining marks by their class, then canonical composition of each
// character with the last starter unless a mark of the same or higher class lies between them.
#include "problems/checkpoint/unicode_text.hpp"

#include <algorithm>
#include <array>
#include <vector>

namespace qprune::detail {
namespace {

struct CodeRange {
  char32_t first;
  char32_t last;
};
struct CombiningRange {
  char32_t first;
  char32_t last;
  std::uint8_t cls;
};
struct Decomposition {
  char32_t cp;
  std::uint32_t offset;
  std::uint32_t length;
};
struct Composition {
  char32_t first;
  char32_t second;
  char32_t composite;
};

#include "problems/checkpoint/unicode_tables.inc"

template <std::size_t N>
bool in_ranges(const CodeRange (&ranges)[N], char32_t c) {
  const auto* it = std::upper_bound(std::begin(ranges), std::end(ranges), c,
                                    [](char32_t v, const CodeRange& r) { return v < r.first; });
  return it != std::begin(ranges) && c <= (it - 1)->last;
}

// ASCII classes, the common case, without a search.
constexpr std::array<CharClass, 128> kAsciiClasses = [] {
  std::array<CharClass, 128> t{};
  for (std::size_t c = 0; c < 128; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
      t[c] = CharClass::kLetter;
    else if (c >= '0' && c <= '9')
      t[c] = CharClass::kNumber;
    else if (c == ' ' || (c >= 0x09 && c <= 0x0D))
      t[c] = CharClass::kSpace;
    else
      t[c] = CharClass::kOther;
  }
  return t;
}();

std::uint8_t combining_class(char32_t c) {
  if (c < 0x300) return 0;
  const auto* it =
      std::upper_bound(std::begin(kCombiningClasses), std::end(kCombiningClasses), c,
                       [](char32_t v, const CombiningRange& r) { return v < r.first; });
  if (it == std::begin(kCombiningClasses) || c > (it - 1)->last) return 0;
  return (it - 1)->cls;
}

// Hangul syllables (Unicode 3.12): S = SBase + (L * VCount + V) * TCount + T.
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

void decompose(char32_t c, std::vector<char32_t>& out) {
  if (c >= kSBase && c < kSBase + kSCount) {
    const char32_t s = c - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (c >= 0xC0 && c < kInvalidByteBase) {
    const auto* it = std::lower_bound(std::begin(kDecompositions), std::end(kDecompositions), c,
                                      [](const Decomposition& d, char32_t v) { return d.cp < v; });
    if (it != std::end(kDecompositions) && it->cp == c) {
      out.insert(out.end(), kDecompositionData + it->offset,
                 kDecompositionData + it->offset + it->length);
      return;
    }
  }
  out.push_back(c);
}

// The primary composite of (a, b), or 0.
char32_t compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto* it =
      std::lower_bound(std::begin(kCompositions), std::end(kCompositions), std::pair{a, b},
                       [](const Composition& c, const std::pair<char32_t, char32_t>& v) {
                         return c.first < v.first || (c.first == v.first && c.second < v.second);
                       });
  if (it != std::end(kCompositions) && it->first == a && it->second == b) return it->composite;
  return 0;
}

}  // namespace

char32_t decode_utf8(std::string_view text, std::size_t& pos) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char b0 = byte(pos);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  std::size_t len = 0;
  char32_t c = 0;
  char32_t min = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2, c = b0 & 0x1Fu, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3, c = b0 & 0x0Fu, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4, c = b0 & 0x07u, min = 0x10000;
  }
  if (len == 0 || pos + len > text.size()) {
    ++pos;
    return kInvalidByteBase + b0;
  }
  for (std::size_t i = 1; i < len; ++i) {
    const unsigned char b = byte(pos + i);
    if ((b & 0xC0u) != 0x80u) {
      ++pos;
      return kInvalidByteBase + b0;
    }
    c = (c << 6) | (b & 0x3Fu);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
    ++pos;
    return kInvalidByteBase + b0;
  }
  pos += len;
  return c;
}

void append_utf8(std::string& out, char32_t c) {
  if (c >= kInvalidByteBase) {
    out.push_back(static_cast<char>(c - kInvalidByteBase));
  } else if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

CharClass char_class(char32_t c) {
  if (c < 0x80) return kAsciiClasses[c];
  if (c >= kInvalidByteBase) return CharClass::kOther;
  if (in_ranges(kLetterRanges, c)) return CharClass::kLetter;
  if (in_ranges(kNumberRanges, c)) return CharClass::kNumber;
  if (std::find(std::begin(kWhiteSpace), std::end(kWhiteSpace), c) != std::end(kWhiteSpace))
    return CharClass::kSpace;
  return CharClass::kOther;
}

std::string nfc(std::string_view text) {
  // Pure ASCII (and any text below U+00C0 without combining marks) is already NFC.
  const bool simple = std::all_of(text.begin(), text.end(),
                                  [](char ch) { return static_cast<unsigned char>(ch) < 0x80; });
  if (simple) return std::string(text);
  std::vector<char32_t> chars;
  chars.reserve(text.size());
  for (std::size_t pos = 0; pos < text.size();) decompose(decode_utf8(text, pos), chars);
  // Canonical ordering: stable sort of each run of nonzero combining classes.
  for (std::size_t i = 0; i < chars.size();) {
    if (combining_class(chars[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < chars.size() && combining_class(chars[j]) != 0) ++j;
    if (j - i > 1)
      std::stable_sort(chars.begin() + static_cast<std::ptrdiff_t>(i),
                       chars.begin() + static_cast<std::ptrdiff_t>(j), [](char32_t a, char32_t b) {
                         return combining_class(a) < combining_class(b);
                       });
    i = j;
  }
  // Canonical composition.
  std::vector<char32_t> out;
  out.reserve(chars.size());
  std::ptrdiff_t starter = -1;
  std::uint8_t last_class = 0;
  for (const char32_t c : chars) {
    const std::uint8_t cls = combining_class(c);
    if (starter >= 0) {
      const bool adjacent = static_cast<std::ptrdiff_t>(out.size()) - 1 == starter;
      const bool blocked = !adjacent && (last_class == 0 || last_class >= cls);
      if (!blocked) {
        const char32_t composite = compose(out[static_cast<std::size_t>(starter)], c);
        if (composite != 0) {
          out[static_cast<std::size_t>(starter)] = composite;
          continue;
        }
      }
    }
    if (cls == 0) starter = static_cast<std::ptrdiff_t>(out.size());
    last_class = cls;
    out.push_back(c);
  }
  std::string result;
  result.reserve(text.size());
  for (const char32_t c : out) append_utf8(result, c);
  return result;
}

const char* unicode_version() { return kUnicodeVersion; }

}  // namespace qprune::detail
