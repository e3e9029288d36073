// Text to token ids with a Hugging Face tokenizer.json, so `qprune calibrate --text` and
// `qprune perplexity --text` work on real checkpoints, and what a GGUF writer needs to describe the
// tokenizer (vocabulary, merges in rank order, token types, pre-tokenizer kind, bos/eos).
//
// Supported (anything else is a ParseError naming the file and the field):
//   - model.type "BPE" with `vocab` and `merges` ("a b" strings or [a, b] arrays), ignore_merges,
//     byte_fallback (<0xXX> tokens), unk_token, fuse_unk; dropout null or 0, no subword prefix or
//     word suffix;
//   - pre_tokenizer ByteLevel (use_regex: the GPT-2 expression; add_prefix_space), or
//     Sequence[Split(Regex, Isolated), ByteLevel(use_regex false)] with the exact expression of
//     GPT-2, Llama 3 or Qwen2 (the expressions are implemented by hand, not by a regex engine, so
//     an unknown one is refused with its text in the message); Metaspace (replacement "▁",
//     prepend_scheme always/first/never); or none (the SentencePiece-style BPE of Llama 2);
//   - normalizer null, NFC, or Sequence[Prepend("▁"), Replace(" ", "▁")] (Llama 2);
//   - added_tokens: matched verbatim in the raw text before anything else, leftmost and longest
//     first (lstrip/rstrip honoured; every added token is matched on the raw text, also those
//     marked "normalized"), as Hugging Face does for the special tokens.
// tokenizer_config.json beside it, when present, gives add_bos_token, bos_token and eos_token;
// without it (or without those keys) the post_processor's TemplateProcessing decides add_bos.
//
// Invalid UTF-8 in the text is never an error: each bad byte counts as a character of its own of
// no letter/number/space class; byte-level BPE encodes it as its byte, byte fallback as <0xXX>,
// otherwise it becomes unk. Encoding is O(n log n) in the text (BPE merges through a priority
// queue), also for one long word without spaces.
//
// Example:
//   Tokenizer tok = Tokenizer::from_folder("Qwen2-0.5B");
//   std::vector<std::int32_t> ids = tok.encode("Hello, world!", tok.add_bos());
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "include/qprune/tokenizer.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qprune {

/// How the text is cut into words before BPE, in the terms llama.cpp's GGUF uses
/// (tokenizer.ggml.pre): "gpt2", "llama-bpe" (Llama 3), "qwen2", and SentencePiece-style (no
/// pre-tokenizer: Llama 2, tokenizer.ggml.model "llama").
enum class PreTokenizerKind { kGpt2, kLlama3, kQwen2, kSentencePiece };

/// "gpt2", "llama3", "qwen2" or "sentencepiece".
[[nodiscard]] const char* pre_tokenizer_name(PreTokenizerKind kind);

/// A token's role, as GGUF's tokenizer.ggml.token_type records it.
enum class TokenType {
  kNormal,       ///< from the BPE vocabulary
  kUnknown,      ///< the unk token
  kSpecial,      ///< an added token marked special (GGUF: control)
  kUserDefined,  ///< an added token not marked special
  kByte,         ///< <0xXX> of byte fallback
  kUnused,       ///< an id no token has (a hole in the numbering)
};

/// A Hugging Face tokenizer.json (see the file comment for what is supported). Cheap to copy
/// (the tables are shared and immutable).
class Tokenizer {
 public:
  /// The largest tokenizer.json read (Llama 3's is 9 MB, Gemma's 34 MB).
  static constexpr std::uint64_t kMaxFileBytes = std::uint64_t{256} << 20;

  /// Reads `tokenizer_json` and, when `tokenizer_config` is not empty and exists,
  /// tokenizer_config.json. Throws IoError (unreadable), ResourceError (file over kMaxFileBytes),
  /// ParseError (`path:0: expected ..., found ...`, or `path: byte N:` for JSON syntax).
  [[nodiscard]] static Tokenizer load(const std::filesystem::path& tokenizer_json,
                                      const std::filesystem::path& tokenizer_config = {});
  /// load(folder / "tokenizer.json", folder / "tokenizer_config.json").
  [[nodiscard]] static Tokenizer from_folder(const std::filesystem::path& folder);
  /// The same from the texts; the paths only name the files in errors. `config_json` may be
  /// empty (no tokenizer_config.json).
  [[nodiscard]] static Tokenizer parse(std::string_view tokenizer_json, const std::string& path,
                                       std::string_view config_json = {},
                                       const std::string& config_path = {});

  /// The token ids of `text`; with `add_bos`, bos_id() first (InvalidArgument when there is
  /// none). Throws InvalidArgument when a character has no token and there is neither byte
  /// fallback nor an unk token.
  [[nodiscard]] std::vector<std::int32_t> encode(std::string_view text, bool add_bos = false) const;

  [[nodiscard]] PreTokenizerKind pre_tokenizer() const;
  /// The model type, "BPE".
  [[nodiscard]] const std::string& model_type() const;
  /// Number of ids, the largest id + 1 (vocabulary and added tokens).
  [[nodiscard]] std::int64_t size() const;
  /// Token text by id ("" for kUnused). Byte-level vocabularies keep their byte-to-Unicode
  /// spelling ("Ġthe"), SentencePiece ones their "▁".
  [[nodiscard]] const std::vector<std::string>& tokens() const;
  [[nodiscard]] const std::vector<TokenType>& token_types() const;
  /// The merges in rank order (rank 0 first).
  [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& merges() const;
  /// The id of a token text (vocabulary or added), if any.
  [[nodiscard]] std::optional<std::int32_t> token_id(std::string_view token) const;
  [[nodiscard]] std::optional<std::int32_t> bos_id() const;
  [[nodiscard]] std::optional<std::int32_t> eos_id() const;
  [[nodiscard]] std::optional<std::int32_t> unk_id() const;
  /// Whether a document starts with bos: tokenizer_config.json's add_bos_token, else whether the
  /// post_processor's template starts with a special token.
  [[nodiscard]] bool add_bos() const;
  /// ByteLevel pre-tokenizer (tokens spelled in GPT-2's byte-to-Unicode alphabet).
  [[nodiscard]] bool byte_level() const;
  [[nodiscard]] bool byte_fallback() const;
  /// The normalizer: "", "NFC" or "sentencepiece" (Prepend + Replace).
  [[nodiscard]] const std::string& normalizer() const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace qprune
