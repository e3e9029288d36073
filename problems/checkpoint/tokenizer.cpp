// Hugging Face tokenizer.json: loading (bounded: file size, JSON depth, every field checked with a
// ParseError naming it) and encoding (include/qprune/tokenizer.hpp). The pipeline is Hugging
// Face's: added tokens are cut out of the raw text first, each remaining piece is normalized, cut
// into words by the pre-tokenizer, and each word is BPE-encoded. The pre-tokenizer expressions of
// GPT-2, Llama 3 and Qwen2 are written out by hand below (one function each, the alternatives in
// the expression's order), so no regex engine is needed;
// tests/data/tokenizer/reference_tokenizer.py runs the real expressions with Python's `regex`
// module and the tests compare the ids.
#include "qprune/tokenizer.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>

#include "core/input_file.hpp"
#include "core/json_input.hpp"
#include "problems/checkpoint/unicode_text.hpp"
#include "qprune/error.hpp"

namespace qprune {
namespace {

using Json = nlohmann::json;

// The pre-tokenizer expressions recognised, exactly as tokenizer.json files write them.
constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581 "▁"

enum class Split { kNone, kGpt2, kLlama3, kQwen2 };
enum class Norm { kNone, kNfc, kSentencePiece };
enum class PrependScheme { kAlways, kFirst, kNever };

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>>;

struct AddedToken {
  std::string content;
  std::int32_t id = 0;
  bool lstrip = false;
  bool rstrip = false;
};

// GPT-2's byte-to-Unicode map: printable Latin-1 bytes stand for themselves, the other 68 bytes
// for U+0100 upwards in byte order.
std::array<char32_t, 256> byte_to_unicode() {
  std::array<char32_t, 256> map{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    map[static_cast<std::size_t>(b)] = printable ? static_cast<char32_t>(b) : next++;
  }
  return map;
}

std::string byte_token(int b) {
  char text[8];
  std::snprintf(text, sizeof text, "<0x%02X>", b);
  return text;
}

std::uint64_t pair_key(std::int32_t a, std::int32_t b) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) |
         static_cast<std::uint32_t>(b);
}

bool is_ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

}  // namespace

struct Tokenizer::Impl {
  std::string path;
  std::string model_type = "BPE";
  std::string normalizer_name;
  PreTokenizerKind kind = PreTokenizerKind::kSentencePiece;
  Norm norm = Norm::kNone;
  Split split = Split::kNone;
  bool byte_level = false;
  bool prefix_space = false;
  bool metaspace = false;
  bool metaspace_split = false;
  PrependScheme prepend_scheme = PrependScheme::kAlways;
  bool ignore_merges = false;
  bool byte_fallback = false;
  bool fuse_unk = false;
  std::optional<std::int32_t> unk, bos, eos;
  bool add_bos = false;

  TokenMap vocab;  // model.vocab
  TokenMap all;    // model.vocab and added tokens
  std::vector<std::string> tokens;
  std::vector<TokenType> types;
  std::vector<std::pair<std::string, std::string>> merges;
  std::unordered_map<std::uint64_t, std::pair<std::int32_t, std::int32_t>> merge_table;
  std::array<std::int32_t, 256> byte_ids{};  // ByteLevel symbol or <0xXX> id of each byte; -1
  std::array<char32_t, 256> byte_chars{};
  std::vector<AddedToken> added;
  std::array<std::vector<std::size_t>, 256> added_by_byte;  // longest first

  [[noreturn]] void fail(const std::string& what) const { throw ParseError(path, 0, what); }

  void encode_piece(std::string_view piece, bool first, std::vector<std::int32_t>& out) const;
  void encode_word(std::string_view word, std::vector<std::int32_t>& out) const;
  void bpe(std::vector<std::int32_t>& symbols, std::vector<std::int32_t>& out) const;
};

namespace {

// ---- Loading --------------------------------------------------------------------------------

using Impl = Tokenizer::Impl;

const Json& member(const Impl& t, const Json& obj, const char* key, const std::string& where) {
  if (!obj.is_object())
    t.fail("expected " + where + " to be an object, found " + detail::describe_json(obj));
  const auto it = obj.find(key);
  if (it == obj.end()) t.fail("expected field '" + where + "." + key + "', found none");
  return *it;
}

std::string string_field(const Impl& t, const Json& obj, const char* key,
                         const std::string& where) {
  const Json& v = member(t, obj, key, where);
  if (!v.is_string())
    t.fail("expected " + where + "." + key + " to be a string, found " + detail::describe_json(v));
  return v.get<std::string>();
}

bool bool_field(const Impl& t, const Json& obj, const char* key, const std::string& where,
                bool fallback) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean())
    t.fail("expected " + where + "." + key + " to be true or false, found " +
           detail::describe_json(*it));
  return it->get<bool>();
}

std::int32_t id_value(const Impl& t, const Json& v, const std::string& where) {
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0 ||
      v.get<std::int64_t>() > std::int64_t{1} << 30)
    t.fail("expected " + where + " to be a token id in [0, 2^30], found " +
           detail::describe_json(v));
  return static_cast<std::int32_t>(v.get<std::int64_t>());
}

void set_token(Impl& t, std::int32_t id, const std::string& text, TokenType type,
               const std::string& where) {
  const auto i = static_cast<std::size_t>(id);
  if (i >= t.tokens.size()) {
    t.tokens.resize(i + 1);
    t.types.resize(i + 1, TokenType::kUnused);
  }
  if (t.types[i] != TokenType::kUnused && t.tokens[i] != text)
    t.fail(where + ": expected a free id or the same token, found id " + std::to_string(id) +
           " already used by '" + t.tokens[i] + "'");
  t.tokens[i] = text;
  t.types[i] = type;
  t.all[text] = id;
}

void parse_normalizer(Impl& t, const Json& n) {
  if (n.is_null()) return;
  const std::string type = string_field(t, n, "type", "normalizer");
  if (type == "NFC") {
    t.norm = Norm::kNfc;
    t.normalizer_name = "NFC";
    return;
  }
  if (type == "Sequence") {
    const Json& list = member(t, n, "normalizers", "normalizer");
    if (!list.is_array()) t.fail("expected normalizer.normalizers to be an array");
    if (list.size() == 1) return parse_normalizer(t, list[0]);
    bool prepend = false, replace = false;
    for (const Json& step : list) {
      const std::string s = string_field(t, step, "type", "normalizer.normalizers[]");
      if (s == "Prepend" && string_field(t, step, "prepend", "Prepend") == kMetaspace) {
        prepend = true;
      } else if (s == "Replace") {
        const Json& pattern = member(t, step, "pattern", "Replace");
        if (!pattern.is_object() || !pattern.contains("String") || pattern["String"] != " " ||
            string_field(t, step, "content", "Replace") != kMetaspace)
          t.fail(
              "expected the normalizer Replace(\" \", \"\u2581\") of Llama 2, found another "
              "Replace");
        replace = true;
      } else {
        t.fail(
            "expected normalizer steps Prepend(\"\u2581\") and Replace(\" \", \"\u2581\") (Llama "
            "2), found '" +
            s + "'");
      }
    }
    if (prepend && replace && list.size() == 2) {
      t.norm = Norm::kSentencePiece;
      t.normalizer_name = "sentencepiece";
      return;
    }
    t.fail(
        "expected normalizer Sequence[Prepend(\"\u2581\"), Replace(\" \", \"\u2581\")], found "
        "another sequence");
  }
  t.fail("expected normalizer null, NFC or Sequence[Prepend, Replace] (Llama 2), found '" + type +
         "' (not supported)");
}

Split split_kind(const Impl& t, const std::string& regex) {
  if (regex == kGpt2Regex) return Split::kGpt2;
  if (regex == kLlama3Regex) return Split::kLlama3;
  if (regex == kQwen2Regex) return Split::kQwen2;
  t.fail(
      "expected the pre-tokenizer expression of GPT-2, Llama 3 or Qwen2, found the unknown "
      "expression '" +
      regex +
      "' (qprune implements these expressions by hand, not as a "
      "regex engine)");
}

void parse_pre_step(Impl& t, const Json& p, bool in_sequence) {
  const std::string type = string_field(t, p, "type", "pre_tokenizer");
  if (type == "ByteLevel") {
    t.byte_level = true;
    t.prefix_space = bool_field(t, p, "add_prefix_space", "ByteLevel", true);
    if (bool_field(t, p, "use_regex", "ByteLevel", true)) {
      if (t.split != Split::kNone) t.fail("expected one pre-tokenizer expression, found two");
      t.split = Split::kGpt2;
    }
  } else if (type == "Split" && in_sequence) {
    const Json& pattern = member(t, p, "pattern", "Split");
    if (!pattern.is_object() || !pattern.contains("Regex") || !pattern["Regex"].is_string())
      t.fail("expected Split.pattern {\"Regex\": ...}, found " + detail::describe_json(pattern));
    if (string_field(t, p, "behavior", "Split") != "Isolated" ||
        bool_field(t, p, "invert", "Split", false))
      t.fail("expected Split with behavior Isolated and invert false");
    if (t.split != Split::kNone) t.fail("expected one pre-tokenizer expression, found two");
    t.split = split_kind(t, pattern["Regex"].get<std::string>());
  } else if (type == "Metaspace") {
    if (string_field(t, p, "replacement", "Metaspace") != kMetaspace)
      t.fail("expected Metaspace.replacement \"\u2581\"");
    t.metaspace = true;
    t.metaspace_split = bool_field(t, p, "split", "Metaspace", true);
    const auto scheme = p.find("prepend_scheme");
    if (scheme != p.end() && scheme->is_string()) {
      const std::string s = scheme->get<std::string>();
      if (s == "always")
        t.prepend_scheme = PrependScheme::kAlways;
      else if (s == "first")
        t.prepend_scheme = PrependScheme::kFirst;
      else if (s == "never")
        t.prepend_scheme = PrependScheme::kNever;
      else
        t.fail("expected Metaspace.prepend_scheme always, first or never, found '" + s + "'");
    } else {
      t.prepend_scheme = bool_field(t, p, "add_prefix_space", "Metaspace", true)
                             ? PrependScheme::kAlways
                             : PrependScheme::kNever;
    }
  } else {
    t.fail("expected pre_tokenizer ByteLevel, Sequence[Split, ByteLevel] or Metaspace, found '" +
           type + "' (not supported)");
  }
}

void parse_pre_tokenizer(Impl& t, const Json& p) {
  if (!p.is_null()) {
    if (string_field(t, p, "type", "pre_tokenizer") == "Sequence") {
      const Json& list = member(t, p, "pretokenizers", "pre_tokenizer");
      if (!list.is_array()) t.fail("expected pre_tokenizer.pretokenizers to be an array");
      for (const Json& step : list) parse_pre_step(t, step, true);
    } else {
      parse_pre_step(t, p, false);
    }
  }
  if (t.metaspace && t.byte_level) t.fail("expected ByteLevel or Metaspace, found both");
  if (t.split != Split::kNone && !t.byte_level)
    t.fail("expected a Split expression to be followed by ByteLevel, found none");
  switch (t.split) {
    case Split::kLlama3:
      t.kind = PreTokenizerKind::kLlama3;
      break;
    case Split::kQwen2:
      t.kind = PreTokenizerKind::kQwen2;
      break;
    case Split::kGpt2:
      t.kind = PreTokenizerKind::kGpt2;
      break;
    case Split::kNone:
      t.kind = t.byte_level ? PreTokenizerKind::kGpt2 : PreTokenizerKind::kSentencePiece;
  }
}

void parse_model(Impl& t, const Json& m) {
  const std::string type = string_field(t, m, "type", "model");
  if (type != "BPE") t.fail("expected model.type \"BPE\", found '" + type + "' (not supported)");
  const auto dropout = m.find("dropout");
  if (dropout != m.end() && !dropout->is_null() &&
      !(dropout->is_number() && dropout->get<double>() == 0.0))
    t.fail("expected model.dropout null, found " + detail::describe_json(*dropout));
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const auto it = m.find(key);
    if (it != m.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty()))
      t.fail(std::string("expected model.") + key + " null, found " + detail::describe_json(*it));
  }
  t.ignore_merges = bool_field(t, m, "ignore_merges", "model", false);
  t.byte_fallback = bool_field(t, m, "byte_fallback", "model", false);
  t.fuse_unk = bool_field(t, m, "fuse_unk", "model", false);
  const Json& vocab = member(t, m, "vocab", "model");
  if (!vocab.is_object()) t.fail("expected model.vocab to be an object of token: id");
  for (const auto& [text, id] : vocab.items()) {
    const std::int32_t i = id_value(t, id, "model.vocab[\"" + text + "\"]");
    set_token(t, i, text, TokenType::kNormal, "model.vocab[\"" + text + "\"]");
    t.vocab[text] = i;
  }
  const auto unk = m.find("unk_token");
  if (unk != m.end() && !unk->is_null()) {
    if (!unk->is_string()) t.fail("expected model.unk_token to be a string or null");
    const auto it = t.vocab.find(unk->get<std::string>());
    if (it == t.vocab.end())
      t.fail("expected model.unk_token to be a token of model.vocab, found '" +
             unk->get<std::string>() + "'");
    t.unk = it->second;
    t.types[static_cast<std::size_t>(it->second)] = TokenType::kUnknown;
  }
  const Json& merges = member(t, m, "merges", "model");
  if (!merges.is_array()) t.fail("expected model.merges to be an array");
  t.merges.reserve(merges.size());
  for (std::size_t r = 0; r < merges.size(); ++r) {
    const Json& e = merges[r];
    const std::string where = "model.merges[" + std::to_string(r) + "]";
    std::string a, b;
    if (e.is_string()) {
      const std::string s = e.get<std::string>();
      const auto space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        t.fail("expected " + where + " to be \"a b\" (two tokens, one space), found '" + s + "'");
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    } else {
      t.fail("expected " + where + " to be \"a b\" or [a, b], found " + detail::describe_json(e));
    }
    const auto ia = t.vocab.find(a), ib = t.vocab.find(b), ic = t.vocab.find(a + b);
    for (const auto& [it, text] : {std::pair{ia, a}, std::pair{ib, b}, std::pair{ic, a + b}})
      if (it == t.vocab.end())
        t.fail(where + ": expected tokens of model.vocab, found '" + text + "' (not in the vocab)");
    // A repeated merge keeps its first (lowest) rank, as Hugging Face's map does.
    t.merge_table.emplace(pair_key(ia->second, ib->second),
                          std::pair{static_cast<std::int32_t>(r), ic->second});
    t.merges.emplace_back(std::move(a), std::move(b));
  }
}

void parse_added(Impl& t, const Json& list) {
  if (list.is_null()) return;
  if (!list.is_array()) t.fail("expected added_tokens to be an array");
  for (std::size_t k = 0; k < list.size(); ++k) {
    const Json& e = list[k];
    const std::string where = "added_tokens[" + std::to_string(k) + "]";
    AddedToken a;
    a.content = string_field(t, e, "content", where);
    if (a.content.empty()) t.fail("expected " + where + ".content to be non-empty");
    a.id = id_value(t, member(t, e, "id", where), where + ".id");
    if (bool_field(t, e, "single_word", where, false))
      t.fail(where + ": single_word added tokens are not supported ('" + a.content + "')");
    a.lstrip = bool_field(t, e, "lstrip", where, false);
    a.rstrip = bool_field(t, e, "rstrip", where, false);
    const bool special = bool_field(t, e, "special", where, false);
    const bool is_unk = t.unk && *t.unk == a.id;
    set_token(
        t, a.id, a.content,
        is_unk ? TokenType::kUnknown : (special ? TokenType::kSpecial : TokenType::kUserDefined),
        where);
    t.added.push_back(std::move(a));
  }
  for (std::size_t k = 0; k < t.added.size(); ++k)
    t.added_by_byte[static_cast<unsigned char>(t.added[k].content[0])].push_back(k);
  for (auto& bucket : t.added_by_byte)
    std::stable_sort(bucket.begin(), bucket.end(), [&](std::size_t x, std::size_t y) {
      return t.added[x].content.size() > t.added[y].content.size();
    });
}

// The first special token of a TemplateProcessing's "single" template, if it comes before $A.
std::optional<std::string> template_bos(const Json& p) {
  if (!p.is_object() || !p.contains("type") || !p["type"].is_string()) return std::nullopt;
  if (p["type"] == "Sequence" && p.contains("processors") && p["processors"].is_array()) {
    for (const Json& q : p["processors"])
      if (auto bos = template_bos(q)) return bos;
    return std::nullopt;
  }
  if (p["type"] != "TemplateProcessing" || !p.contains("single") || !p["single"].is_array() ||
      p["single"].empty())
    return std::nullopt;
  const Json& first = p["single"][0];
  if (first.is_object() && first.contains("SpecialToken") && first["SpecialToken"].is_object() &&
      first["SpecialToken"].contains("id") && first["SpecialToken"]["id"].is_string())
    return first["SpecialToken"]["id"].get<std::string>();
  return std::nullopt;
}

std::optional<std::int32_t> config_token(const Impl& t, const Json& config, const char* key,
                                         const std::string& config_path) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  std::string text;
  if (it->is_string()) {
    text = it->get<std::string>();
  } else if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    text = (*it)["content"].get<std::string>();
  } else {
    throw ParseError(config_path, 0,
                     std::string("expected ") + key +
                         " to be a string or {\"content\": ...}, found " +
                         detail::describe_json(*it));
  }
  const auto id = t.all.find(text);
  if (id == t.all.end())
    throw ParseError(
        config_path, 0,
        std::string("expected ") + key + " to be a token of " + t.path + ", found '" + text + "'");
  return id->second;
}

void check_byte_tokens(Impl& t) {
  t.byte_ids.fill(-1);
  t.byte_chars = byte_to_unicode();
  if (t.byte_level) {
    for (int b = 0; b < 256; ++b) {
      std::string s;
      detail::append_utf8(s, t.byte_chars[static_cast<std::size_t>(b)]);
      const auto it = t.vocab.find(s);
      if (it == t.vocab.end()) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02X", b);
        t.fail(
            "expected the 256 byte symbols of the ByteLevel pre-tokenizer in model.vocab, "
            "found no '" +
            s + "' (byte " + hex + ")");
      }
      t.byte_ids[static_cast<std::size_t>(b)] = it->second;
    }
  } else if (t.byte_fallback) {
    for (int b = 0; b < 256; ++b) {
      const auto it = t.vocab.find(byte_token(b));
      if (it == t.vocab.end()) continue;
      t.byte_ids[static_cast<std::size_t>(b)] = it->second;
      t.types[static_cast<std::size_t>(it->second)] = TokenType::kByte;
    }
  }
}

// ---- Pre-tokenizer expressions ----------------------------------------------------------------

// The text of one piece as characters, with their classes and byte offsets.
struct Chars {
  std::vector<char32_t> c;
  std::vector<detail::CharClass> cls;
  std::vector<std::size_t> offset;  // size() + 1 entries

  explicit Chars(std::string_view s) {
    c.reserve(s.size());
    offset.reserve(s.size() + 1);
    for (std::size_t pos = 0; pos < s.size();) {
      offset.push_back(pos);
      c.push_back(detail::decode_utf8(s, pos));
      cls.push_back(detail::char_class(c.back()));
    }
    offset.push_back(s.size());
  }
  [[nodiscard]] std::size_t size() const { return c.size(); }
  [[nodiscard]] bool is(std::size_t i, detail::CharClass k) const {
    return i < size() && cls[i] == k;
  }
  [[nodiscard]] bool letter(std::size_t i) const { return is(i, detail::CharClass::kLetter); }
  [[nodiscard]] bool number(std::size_t i) const { return is(i, detail::CharClass::kNumber); }
  [[nodiscard]] bool space(std::size_t i) const { return is(i, detail::CharClass::kSpace); }
  [[nodiscard]] bool other(std::size_t i) const { return is(i, detail::CharClass::kOther); }
  [[nodiscard]] bool newline(std::size_t i) const {
    return i < size() && (c[i] == '\r' || c[i] == '\n');
  }
  template <class Pred>
  [[nodiscard]] std::size_t run(std::size_t i, Pred pred) const {
    while (i < size() && pred(i)) ++i;
    return i;
  }
};

// 's|'t|'re|'ve|'m|'ll|'d, optionally case-insensitive ((?i) also folds U+017F long s to s).
std::size_t contraction(const Chars& s, std::size_t i, bool ignore_case) {
  if (s.c[i] != '\'' || i + 1 >= s.size()) return 0;
  const auto lower = [&](std::size_t k) -> char32_t {
    if (k >= s.size()) return 0;
    const char32_t ch = s.c[k];
    if (!ignore_case) return ch;
    if (ch >= 'A' && ch <= 'Z') return ch + 32;
    return ch == 0x17F ? U's' : ch;
  };
  const char32_t a = lower(i + 1), b = lower(i + 2);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
  return 0;
}

// The end of a whitespace run starting at i under `\s+(?!\S)|\s+`: all of it at the end of the
// text, else all but its last character (which then starts the next word), else one character.
std::size_t trailing_space(const Chars& s, std::size_t i) {
  const std::size_t j = s.run(i, [&](std::size_t k) { return s.space(k); });
  if (j == s.size() || j - i < 2) return j;
  return j - 1;
}

// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
std::size_t match_gpt2(const Chars& s, std::size_t i) {
  if (const std::size_t end = contraction(s, i, false)) return end;
  const bool sp = s.c[i] == ' ';
  for (const detail::CharClass k :
       {detail::CharClass::kLetter, detail::CharClass::kNumber, detail::CharClass::kOther}) {
    const auto in = [&](std::size_t j) { return s.is(j, k); };
    if (sp && in(i + 1)) return s.run(i + 1, in);
    if (in(i)) return s.run(i, in);
  }
  return trailing_space(s, i);
}

// Llama 3 (max_digits 3) and Qwen2 (max_digits 1):
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
// \s*[\r\n]+|\s+(?!\S)|\s+
std::size_t match_llama3(const Chars& s, std::size_t i, std::size_t max_digits) {
  if (const std::size_t end = contraction(s, i, true)) return end;
  const auto letter = [&](std::size_t k) { return s.letter(k); };
  if (s.letter(i)) return s.run(i, letter);
  if (!s.newline(i) && !s.number(i) && s.letter(i + 1)) return s.run(i + 1, letter);
  if (s.number(i))
    return std::min(s.run(i, [&](std::size_t k) { return s.number(k); }), i + max_digits);
  const auto other = [&](std::size_t k) { return s.other(k); };
  const auto newline = [&](std::size_t k) { return s.newline(k); };
  if (s.c[i] == ' ' && s.other(i + 1)) return s.run(s.run(i + 1, other), newline);
  if (s.other(i)) return s.run(s.run(i, other), newline);
  // Whitespace: \s*[\r\n]+ ends after the run's last newline, if it has one.
  const std::size_t j = s.run(i, [&](std::size_t k) { return s.space(k); });
  for (std::size_t k = j; k > i; --k)
    if (s.newline(k - 1)) return k;
  return trailing_space(s, i);
}

}  // namespace

// ---- Encoding ---------------------------------------------------------------------------------

// BPE over `symbols` (ids), merged lowest rank first and leftmost first among equal ranks, as
// Hugging Face's Word::merge_all does: a min-heap of (rank, position) over a linked list of
// symbols, stale entries skipped when popped. O(n log n) in the word length.
void Tokenizer::Impl::bpe(std::vector<std::int32_t>& symbols,
                          std::vector<std::int32_t>& out) const {
  const auto n = static_cast<std::int32_t>(symbols.size());
  if (n < 2) {
    out.insert(out.end(), symbols.begin(), symbols.end());
    return;
  }
  std::vector<std::int32_t> next(static_cast<std::size_t>(n)), prev(static_cast<std::size_t>(n));
  for (std::int32_t i = 0; i < n; ++i) {
    next[static_cast<std::size_t>(i)] = i + 1 < n ? i + 1 : -1;
    prev[static_cast<std::size_t>(i)] = i - 1;
  }
  using Entry = std::pair<std::int32_t, std::int32_t>;  // (rank, position)
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
  const auto push = [&](std::int32_t i) {
    const std::int32_t j = next[static_cast<std::size_t>(i)];
    if (j < 0) return;
    const auto it = merge_table.find(
        pair_key(symbols[static_cast<std::size_t>(i)], symbols[static_cast<std::size_t>(j)]));
    if (it != merge_table.end()) heap.emplace(it->second.first, i);
  };
  for (std::int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const auto [rank, i] = heap.top();
    heap.pop();
    const auto ui = static_cast<std::size_t>(i);
    const std::int32_t j = next[ui];
    if (symbols[ui] < 0 || j < 0) continue;
    const auto it = merge_table.find(pair_key(symbols[ui], symbols[static_cast<std::size_t>(j)]));
    if (it == merge_table.end() || it->second.first != rank) continue;
    symbols[ui] = it->second.second;
    symbols[static_cast<std::size_t>(j)] = -1;
    next[ui] = next[static_cast<std::size_t>(j)];
    if (next[ui] >= 0) prev[static_cast<std::size_t>(next[ui])] = i;
    if (prev[ui] >= 0) push(prev[ui]);
    push(i);
  }
  for (std::int32_t i = 0; i >= 0; i = next[static_cast<std::size_t>(i)])
    out.push_back(symbols[static_cast<std::size_t>(i)]);
}

void Tokenizer::Impl::encode_word(std::string_view word, std::vector<std::int32_t>& out) const {
  if (word.empty()) return;
  std::vector<std::int32_t> symbols;
  symbols.reserve(word.size());
  if (byte_level) {
    if (ignore_merges) {
      std::string mapped;
      for (const char ch : word)
        detail::append_utf8(mapped, byte_chars[static_cast<unsigned char>(ch)]);
      const auto it = vocab.find(mapped);
      if (it != vocab.end()) {
        out.push_back(it->second);
        return;
      }
    }
    for (const char ch : word) symbols.push_back(byte_ids[static_cast<unsigned char>(ch)]);
    bpe(symbols, out);
    return;
  }
  if (ignore_merges) {
    const auto it = vocab.find(word);
    if (it != vocab.end()) {
      out.push_back(it->second);
      return;
    }
  }
  bool last_unk = false;
  for (std::size_t pos = 0; pos < word.size();) {
    const std::size_t begin = pos;
    const char32_t c = detail::decode_utf8(word, pos);
    const std::string_view ch = word.substr(begin, pos - begin);
    if (c < detail::kInvalidByteBase) {
      const auto it = vocab.find(ch);
      if (it != vocab.end()) {
        symbols.push_back(it->second);
        last_unk = false;
        continue;
      }
    }
    if (byte_fallback && std::all_of(ch.begin(), ch.end(), [&](char b) {
          return byte_ids[static_cast<unsigned char>(b)] >= 0;
        })) {
      for (const char b : ch) symbols.push_back(byte_ids[static_cast<unsigned char>(b)]);
      last_unk = false;
      continue;
    }
    if (!unk) {
      char hex[16];
      std::snprintf(hex, sizeof hex, "U+%04X", static_cast<unsigned>(c));
      throw InvalidArgument(path + ": the character " +
                            (c < detail::kInvalidByteBase ? std::string(hex) : "(invalid UTF-8)") +
                            " has no token, and the tokenizer has neither byte fallback nor an "
                            "unk token");
    }
    if (!(fuse_unk && last_unk)) symbols.push_back(*unk);
    last_unk = true;
  }
  bpe(symbols, out);
}

void Tokenizer::Impl::encode_piece(std::string_view piece, bool first,
                                   std::vector<std::int32_t>& out) const {
  if (piece.empty()) return;
  std::string text;
  if (norm == Norm::kNfc) {
    text = detail::nfc(piece);
  } else if (norm == Norm::kSentencePiece || metaspace) {
    for (const char ch : piece) {
      if (ch == ' ')
        text += kMetaspace;
      else
        text += ch;
    }
    // The Prepend normalizer always prepends; Metaspace only where no "▁" starts the piece.
    const bool prepend =
        norm == Norm::kSentencePiece || ((prepend_scheme == PrependScheme::kAlways ||
                                          (prepend_scheme == PrependScheme::kFirst && first)) &&
                                         !text.starts_with(kMetaspace));
    if (prepend) text.insert(0, kMetaspace);
  } else {
    text = piece;
  }
  if (byte_level && prefix_space && text.front() != ' ') text.insert(text.begin(), ' ');
  if (split != Split::kNone) {
    const Chars chars(text);
    for (std::size_t i = 0; i < chars.size();) {
      const std::size_t end = split == Split::kGpt2
                                  ? match_gpt2(chars, i)
                                  : match_llama3(chars, i, split == Split::kLlama3 ? 3 : 1);
      encode_word(
          std::string_view(text).substr(chars.offset[i], chars.offset[end] - chars.offset[i]), out);
      i = end;
    }
    return;
  }
  if (metaspace && metaspace_split) {
    // Each "▁" starts a new word (Hugging Face's MergedWithNext).
    std::size_t begin = 0;
    for (std::size_t pos = text.find(kMetaspace, 1); pos != std::string::npos;
         pos = text.find(kMetaspace, pos + 1)) {
      encode_word(std::string_view(text).substr(begin, pos - begin), out);
      begin = pos;
    }
    encode_word(std::string_view(text).substr(begin), out);
    return;
  }
  encode_word(text, out);
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  const Impl& t = *impl_;
  std::vector<std::int32_t> out;
  out.reserve(text.size() / 3 + 1);
  if (add_bos) {
    if (!t.bos) throw InvalidArgument(t.path + " has no bos token to start the text with");
    out.push_back(*t.bos);
  }
  // Added tokens first: leftmost, and the longest at a position.
  std::size_t piece_begin = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    const AddedToken* match = nullptr;
    for (const std::size_t k : t.added_by_byte[static_cast<unsigned char>(text[pos])]) {
      if (text.substr(pos).starts_with(t.added[k].content)) {
        match = &t.added[k];
        break;
      }
    }
    if (match == nullptr) {
      ++pos;
      continue;
    }
    std::size_t left = pos;
    if (match->lstrip)
      while (left > piece_begin && is_ascii_space(text[left - 1])) --left;
    std::size_t right = pos + match->content.size();
    if (match->rstrip)
      while (right < text.size() && is_ascii_space(text[right])) ++right;
    t.encode_piece(text.substr(piece_begin, left - piece_begin), piece_begin == 0, out);
    out.push_back(match->id);
    pos = piece_begin = right;
  }
  t.encode_piece(text.substr(piece_begin), piece_begin == 0, out);
  return out;
}

// ---- Construction and accessors -----------------------------------------------------------------

Tokenizer Tokenizer::parse(std::string_view tokenizer_json, const std::string& path,
                           std::string_view config_json, const std::string& config_path) {
  auto t = std::make_shared<Impl>();
  t->path = path;
  const Json doc = detail::parse_json<Json>(tokenizer_json, {path});
  if (!doc.is_object())
    t->fail("expected a tokenizer.json object, found " + detail::describe_json(doc));
  parse_model(*t, member(*t, doc, "model", "tokenizer"));
  const auto field = [&](const char* key) -> const Json& {
    static const Json kNull;
    const auto it = doc.find(key);
    return it == doc.end() ? kNull : *it;
  };
  parse_normalizer(*t, field("normalizer"));
  parse_pre_tokenizer(*t, field("pre_tokenizer"));
  if (t->norm == Norm::kSentencePiece && t->byte_level)
    t->fail("expected the Llama 2 normalizer without a ByteLevel pre-tokenizer, found both");
  check_byte_tokens(*t);
  parse_added(*t, field("added_tokens"));

  if (const auto bos = template_bos(field("post_processor"))) {
    const auto it = t->all.find(*bos);
    if (it != t->all.end()) {
      t->bos = it->second;
      t->add_bos = true;
    }
  }
  if (!config_json.empty()) {
    const Json config = detail::parse_json<Json>(config_json, {config_path});
    if (!config.is_object())
      throw ParseError(
          config_path, 0,
          "expected a tokenizer_config.json object, found " + detail::describe_json(config));
    if (auto bos = config_token(*t, config, "bos_token", config_path)) t->bos = bos;
    t->eos = config_token(*t, config, "eos_token", config_path);
    const auto add = config.find("add_bos_token");
    if (add != config.end() && add->is_boolean()) t->add_bos = add->get<bool>();
  }
  if (t->add_bos && !t->bos) t->add_bos = false;
  return Tokenizer(std::move(t));
}

Tokenizer Tokenizer::load(const std::filesystem::path& tokenizer_json,
                          const std::filesystem::path& tokenizer_config) {
  const auto read = [](const std::filesystem::path& p) {
    detail::InputFile file(p);
    if (file.size() > kMaxFileBytes)
      throw ResourceError(p.string() + ": " + std::to_string(file.size()) +
                          " bytes, more than a tokenizer.json may have (" +
                          std::to_string(kMaxFileBytes) + ")");
    return file.read_rest();
  };
  const std::string text = read(tokenizer_json);
  std::string config;
  if (!tokenizer_config.empty() && std::filesystem::exists(tokenizer_config))
    config = read(tokenizer_config);
  return parse(text, tokenizer_json.string(), config, tokenizer_config.string());
}

Tokenizer Tokenizer::from_folder(const std::filesystem::path& folder) {
  return load(folder / "tokenizer.json", folder / "tokenizer_config.json");
}

const char* pre_tokenizer_name(PreTokenizerKind kind) {
  switch (kind) {
    case PreTokenizerKind::kGpt2:
      return "gpt2";
    case PreTokenizerKind::kLlama3:
      return "llama3";
    case PreTokenizerKind::kQwen2:
      return "qwen2";
    case PreTokenizerKind::kSentencePiece:
      return "sentencepiece";
  }
  return "?";
}

PreTokenizerKind Tokenizer::pre_tokenizer() const { return impl_->kind; }
const std::string& Tokenizer::model_type() const { return impl_->model_type; }
std::int64_t Tokenizer::size() const { return static_cast<std::int64_t>(impl_->tokens.size()); }
const std::vector<std::string>& Tokenizer::tokens() const { return impl_->tokens; }
const std::vector<TokenType>& Tokenizer::token_types() const { return impl_->types; }
const std::vector<std::pair<std::string, std::string>>& Tokenizer::merges() const {
  return impl_->merges;
}
std::optional<std::int32_t> Tokenizer::token_id(std::string_view token) const {
  const auto it = impl_->all.find(token);
  if (it == impl_->all.end()) return std::nullopt;
  return it->second;
}
std::optional<std::int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<std::int32_t> Tokenizer::eos_id() const { return impl_->eos; }
std::optional<std::int32_t> Tokenizer::unk_id() const { return impl_->unk; }
bool Tokenizer::add_bos() const { return impl_->add_bos; }
bool Tokenizer::byte_level() const { return impl_->byte_level; }
bool Tokenizer::byte_fallback() const { return impl_->byte_fallback; }
const std::string& Tokenizer::normalizer() const { return impl_->normalizer_name; }

}  // namespace qprune
