// tokenizer.json (include/qprune/tokenizer.hpp): the ids of six test tokenizers (byte-level BPE
// with the GPT-2, Llama 3 and Qwen2 pre-tokenizers, and the SentencePiece-style BPE of Llama 2 with
// its normalizer or with Metaspace)
// on 10 KB of mixed-script text and on edge cases, compared with the ids of the independent Python
// reference (tests/data/tokenizer/reference_tokenizer.py, expected.json); what a GGUF writer reads
// (vocabulary, merges, token types, bos/eos); invalid UTF-8 and a 1 MB word; the bad-input
// fixtures.
#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "qprune/error.hpp"
#include "qprune/tokenizer.hpp"

using namespace qprune;
namespace fs = std::filesystem;

namespace {

const fs::path kDir = fs::path(QPRUNE_TEST_DATA) / "tokenizer";

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Tokenizer load(const std::string& name) {
  if (name == "sentencepiece")
    return Tokenizer::load(kDir / "sentencepiece.json", kDir / "sentencepiece_config.json");
  return Tokenizer::load(kDir / (name + ".json"));
}

const nlohmann::json& expected() {
  static const nlohmann::json j = nlohmann::json::parse(slurp(kDir / "expected.json"));
  return j;
}

// The first index where two id lists differ, or -1, for a readable failure.
std::int64_t first_difference(const std::vector<std::int32_t>& a,
                              const std::vector<std::int32_t>& b) {
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    if (a[i] != b[i]) return static_cast<std::int64_t>(i);
  return a.size() == b.size() ? -1 : static_cast<std::int64_t>(std::min(a.size(), b.size()));
}

// GPT-2's byte-to-Unicode map, inverted: code point of a byte symbol -> byte.
std::vector<int> unicode_to_byte() {
  std::vector<int> inv(512, -1);
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    inv[static_cast<std::size_t>(printable ? b : next++)] = b;
  }
  return inv;
}

// The bytes a byte-level token sequence spells.
std::string byte_level_decode(const Tokenizer& tok, const std::vector<std::int32_t>& ids) {
  static const std::vector<int> inv = unicode_to_byte();
  std::string out;
  for (const std::int32_t id : ids) {
    const std::string& text = tok.tokens()[static_cast<std::size_t>(id)];
    if (tok.token_types()[static_cast<std::size_t>(id)] != TokenType::kNormal) {
      out += text;
      continue;
    }
    for (std::size_t i = 0; i < text.size();) {  // the symbols are U+0021..U+0143
      const auto b0 = static_cast<unsigned char>(text[i]);
      std::uint32_t cp = b0;
      if (b0 >= 0x80) {
        cp = ((b0 & 0x1Fu) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3Fu);
        i += 2;
      } else {
        ++i;
      }
      REQUIRE(cp < inv.size());
      REQUIRE(inv[cp] >= 0);
      out.push_back(static_cast<char>(inv[cp]));
    }
  }
  return out;
}

void expect_parse_error(const std::string& file, const std::string& what) {
  try {
    (void)Tokenizer::load(kDir / "bad" / file);
    FAIL("no error for " << file);
  } catch (const ParseError& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find(file) != std::string::npos);
    CHECK(msg.find(what) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("tokenizer ids equal the reference's on mixed-script text and edge cases") {
  const std::string text = slurp(kDir / "mixed.txt");
  REQUIRE(text.size() >= 10240);
  const nlohmann::json cases = nlohmann::json::parse(slurp(kDir / "cases.json"));
  for (const char* name : {"bytelevel_gpt2", "bytelevel_gpt2_prefix", "bytelevel_llama3",
                           "bytelevel_qwen2", "sentencepiece", "sentencepiece_metaspace"}) {
    INFO(name);
    const Tokenizer tok = load(name);
    const nlohmann::json& want = expected().at(name);
    const auto mixed = tok.encode(text);
    const auto ref = want.at("mixed").get<std::vector<std::int32_t>>();
    CHECK(first_difference(mixed, ref) == -1);
    CHECK(mixed.size() == ref.size());
    REQUIRE(want.at("cases").size() == cases.size());
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const std::string c = cases[i].get<std::string>();
      INFO("case " << i << ": '" << c.substr(0, 60) << "'");
      CHECK(tok.encode(c) == want.at("cases")[i].get<std::vector<std::int32_t>>());
    }
  }
}

TEST_CASE("tokenizer exposes what a GGUF writer needs") {
  const nlohmann::json doc = nlohmann::json::parse(slurp(kDir / "bytelevel_llama3.json"));
  const Tokenizer llama3 = load("bytelevel_llama3");
  CHECK(llama3.model_type() == "BPE");
  CHECK(llama3.pre_tokenizer() == PreTokenizerKind::kLlama3);
  CHECK(std::string(pre_tokenizer_name(llama3.pre_tokenizer())) == "llama3");
  CHECK(llama3.byte_level());
  CHECK(!llama3.byte_fallback());
  const auto& vocab = doc["model"]["vocab"];
  const auto& added = doc["added_tokens"];
  CHECK(llama3.size() == static_cast<std::int64_t>(vocab.size() + added.size()));
  for (const auto& [text, id] : vocab.items()) {
    REQUIRE(id.get<std::size_t>() < llama3.tokens().size());
    CHECK(llama3.tokens()[id.get<std::size_t>()] == text);
    CHECK(llama3.token_types()[id.get<std::size_t>()] == TokenType::kNormal);
  }
  for (const auto& a : added) {
    const auto id = a["id"].get<std::size_t>();
    CHECK(llama3.tokens()[id] == a["content"].get<std::string>());
    CHECK(llama3.token_types()[id] ==
          (a["special"].get<bool>() ? TokenType::kSpecial : TokenType::kUserDefined));
  }
  const auto& merges = doc["model"]["merges"];
  REQUIRE(llama3.merges().size() == merges.size());
  for (std::size_t r = 0; r < merges.size(); ++r) {
    CHECK(llama3.merges()[r].first == merges[r][0].get<std::string>());
    CHECK(llama3.merges()[r].second == merges[r][1].get<std::string>());
  }
  // The template of the post_processor starts with <|endoftext|>: add_bos, with that token.
  CHECK(llama3.add_bos());
  CHECK(llama3.bos_id() == llama3.token_id("<|endoftext|>"));
  CHECK(llama3.encode("hi", true).front() == *llama3.bos_id());
  CHECK(llama3.encode("hi", true).size() == llama3.encode("hi").size() + 1);

  const Tokenizer gpt2 = load("bytelevel_gpt2");
  CHECK(gpt2.pre_tokenizer() == PreTokenizerKind::kGpt2);
  CHECK(!gpt2.add_bos());
  CHECK(!gpt2.bos_id());
  CHECK_THROWS_AS((void)gpt2.encode("x", true), InvalidArgument);
  CHECK(load("bytelevel_qwen2").pre_tokenizer() == PreTokenizerKind::kQwen2);
  CHECK(load("bytelevel_qwen2").normalizer() == "NFC");

  const Tokenizer sp = load("sentencepiece");
  CHECK(sp.pre_tokenizer() == PreTokenizerKind::kSentencePiece);
  CHECK(sp.normalizer() == "sentencepiece");
  CHECK(!sp.byte_level());
  CHECK(sp.byte_fallback());
  CHECK(sp.unk_id() == 0);
  CHECK(sp.bos_id() == 1);
  CHECK(sp.eos_id() == 2);
  CHECK(sp.add_bos());  // tokenizer_config.json's add_bos_token
  CHECK(sp.token_types()[0] == TokenType::kUnknown);
  CHECK(sp.token_types()[1] == TokenType::kSpecial);
  for (int b = 0; b < 256; ++b)
    CHECK(sp.token_types()[static_cast<std::size_t>(3 + b)] == TokenType::kByte);
  // Without tokenizer_config.json the template's <s> still says add_bos.
  const Tokenizer sp_alone = Tokenizer::load(kDir / "sentencepiece.json");
  CHECK(sp_alone.add_bos());
  CHECK(!sp_alone.eos_id());
  const Tokenizer meta = load("sentencepiece_metaspace");
  CHECK(meta.pre_tokenizer() == PreTokenizerKind::kSentencePiece);
  CHECK(meta.normalizer().empty());
}

TEST_CASE("tokenizer: invalid UTF-8 never fails and byte-level keeps every byte") {
  const Tokenizer qwen2 = load("bytelevel_qwen2");
  const Tokenizer llama3 = load("bytelevel_llama3");
  const Tokenizer gpt2 = load("bytelevel_gpt2");
  const Tokenizer sp = load("sentencepiece");
  std::mt19937 rng(7);
  const std::array<std::string, 6> pieces = {"\xC3",         "\xA9",     "\xF0\x9F",
                                             "\xED\xA0\x80", "\xC0\xAF", "\xFF"};
  for (int round = 0; round < 200; ++round) {
    std::string s;
    const int len = static_cast<int>(rng() % 64);
    for (int i = 0; i < len; ++i) {
      switch (rng() % 4) {
        case 0:
          s += static_cast<char>(rng() % 256);
          break;
        case 1:
          s += pieces[rng() % pieces.size()];
          break;
        case 2:
          s += " \n\t"[rng() % 3];
          break;
        default:
          s += "a\xC3\xA9\xE4\xB8\xAD"
               "1'"[rng() % 8];
      }
    }
    INFO("round " << round);
    // Qwen2's NFC keeps invalid bytes; text that is already NFC is kept exactly.
    CHECK(byte_level_decode(llama3, llama3.encode(s)) == s);
    CHECK(byte_level_decode(gpt2, gpt2.encode(s)) == s);
    for (const std::int32_t id : qwen2.encode(s)) CHECK(id < qwen2.size());
    for (const std::int32_t id : sp.encode(s)) CHECK(id < sp.size());
  }
}

TEST_CASE("tokenizer: a 1 MB word without spaces") {
  std::string word;
  while (word.size() < (std::size_t{1} << 20)) word += "thethe\xC3\xA9";
  const Tokenizer llama3 = load("bytelevel_llama3");
  const auto ids = llama3.encode(word);
  CHECK(byte_level_decode(llama3, ids) == word);
  CHECK(ids.size() <= word.size() / 2);
  // SentencePiece style: the whole text is one word; "▁" + the text comes back.
  const Tokenizer sp = load("sentencepiece");
  const auto sp_ids = sp.encode(word);
  std::string back;
  for (const std::int32_t id : sp_ids) {
    const std::string& text = sp.tokens()[static_cast<std::size_t>(id)];
    if (sp.token_types()[static_cast<std::size_t>(id)] == TokenType::kByte)
      back.push_back(static_cast<char>(std::stoi(text.substr(3, 2), nullptr, 16)));
    else
      back += text;
  }
  CHECK(back == "\xE2\x96\x81" + word);
}

TEST_CASE("tokenizer: bad tokenizer.json files are ParseErrors naming file and field") {
  expect_parse_error("truncated.json", "byte ");
  expect_parse_error("unknown_model.json", "expected model.type \"BPE\", found 'WordPiece'");
  expect_parse_error("merge_not_in_vocab.json",
                     "model.merges[1]: expected tokens of model.vocab, found 'c'");
  expect_parse_error("unknown_regex.json", "unknown expression '\\p{L}+|\\p{N}+|[^\\p{L}\\p{N}]+'");
  expect_parse_error("missing_byte_symbol.json", "256 byte symbols");
  CHECK_THROWS_AS((void)Tokenizer::load(kDir / "bad" / "no_such_file.json"), IoError);
  CHECK_THROWS_AS((void)Tokenizer::parse("[1, 2]", "t.json"), ParseError);
  CHECK_THROWS_AS((void)Tokenizer::parse(std::string(100, '[') + std::string(100, ']'), "t.json"),
                  ParseError);
}
