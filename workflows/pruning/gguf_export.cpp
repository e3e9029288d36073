// write_gguf: a checkpoint, pruned by masks or not, as a llama.cpp model file. The tensors come
// from PrunedLayers (the slicing apply_masks writes), unpadded; names, metadata keys and the rotary
// layout follow llama.cpp's converter (convert_hf_to_gguf.py) for the Llama and Qwen2 families.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <optional>

#include "qprune/calibration.hpp"
#include "qprune/error.hpp"
#include "qprune/gguf.hpp"
#include "qprune/prune_pipeline.hpp"
#include "qprune/tokenizer.hpp"
#include "workflows/pruning/pruned_writer.hpp"

namespace qprune {
namespace {

// llama.cpp's name of a Hugging Face tensor (`layer` set for a decoder layer's tensors); empty for
// a tensor llama.cpp computes itself (rotary inv_freq).
std::string gguf_name(const std::string& name, std::optional<std::int64_t> layer) {
  if (!layer) {
    if (name == "model.embed_tokens.weight") return "token_embd.weight";
    if (name == "model.norm.weight") return "output_norm.weight";
    if (name == "lm_head.weight") return "output.weight";
  } else {
    static const std::pair<const char*, const char*> kLayer[] = {
        {"input_layernorm.weight", "attn_norm.weight"},
        {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.q_proj.bias", "attn_q.bias"},
        {"self_attn.k_proj.weight", "attn_k.weight"},
        {"self_attn.k_proj.bias", "attn_k.bias"},
        {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.v_proj.bias", "attn_v.bias"},
        {"self_attn.o_proj.weight", "attn_output.weight"},
        {"self_attn.o_proj.bias", "attn_output.bias"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"},
        {"mlp.gate_proj.bias", "ffn_gate.bias"},
        {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.up_proj.bias", "ffn_up.bias"},
        {"mlp.down_proj.weight", "ffn_down.weight"},
        {"mlp.down_proj.bias", "ffn_down.bias"},
    };
    const std::string rest = name.substr(layer_tensor_prefix(*layer).size());
    for (const auto& [hf, gg] : kLayer)
      if (rest == hf) return "blk." + std::to_string(*layer) + "." + gg;
    if (rest == "self_attn.rotary_emb.inv_freq") return {};
  }
  throw InvalidArgument("tensor " + name + " has no GGUF name (qprune writes the Llama/Qwen2 " +
                        "tensors: embeddings, attention, MLP, norms, lm_head)");
}

// Rows of a q or k projection (or bias) from Hugging Face's rotary layout, the two halves of each
// head rotated together (rotate_half), into llama.cpp's "normal" one, adjacent pairs rotated
// together: row h*d + 2i + j takes row h*d + j*d/2 + i (as convert_hf_to_gguf.py's permute).
Eigen::MatrixXd interleave_rotary_rows(const Eigen::MatrixXd& w, std::int64_t head_dim) {
  Eigen::MatrixXd out(w.rows(), w.cols());
  const Eigen::Index d = head_dim;
  for (Eigen::Index h = 0; h < w.rows() / d; ++h)
    for (Eigen::Index i = 0; i < d / 2; ++i)
      for (Eigen::Index j = 0; j < 2; ++j)
        out.row(h * d + 2 * i + j) = w.row(h * d + j * d / 2 + i);
  return out;
}

GgmlType ggml_type_of(Dtype dtype) {
  switch (dtype) {
    case Dtype::kF16:
      return GgmlType::kF16;
    case Dtype::kBF16:
      return GgmlType::kBF16;
    default:
      return GgmlType::kF32;
  }
}
Dtype dtype_of(GgmlType type) {
  switch (type) {
    case GgmlType::kF16:
      return Dtype::kF16;
    case GgmlType::kBF16:
      return Dtype::kBF16;
    case GgmlType::kF32:
      break;
  }
  return Dtype::kF32;
}

// GPT-2's printable stand-in of each byte (bytes_to_unicode): printable Latin-1 bytes stand for
// themselves, the others for U+0100 upwards in byte order; as UTF-8.
std::vector<std::string> byte_level_vocabulary() {
  std::vector<std::string> vocab(256);
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    const int cp = printable ? b : next++;
    std::string s;
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    vocab[static_cast<std::size_t>(b)] = s;
  }
  return vocab;
}

std::uint32_t u32(std::int64_t v) { return static_cast<std::uint32_t>(v); }

// GGUF's token types (llama.h's llama_token_type).
std::int32_t gguf_token_type(TokenType type) {
  switch (type) {
    case TokenType::kNormal:
      return 1;
    case TokenType::kUnknown:
      return 2;
    case TokenType::kSpecial:
      return 3;
    case TokenType::kUserDefined:
      return 4;
    case TokenType::kUnused:
      return 5;
    case TokenType::kByte:
      return 6;
  }
  return 1;
}

// A Hugging Face tokenizer.json as llama.cpp's tokenizer keys: byte-level BPE as "gpt2" with the
// pre-tokenizer's name and the merges; the SentencePiece-style BPE of Llama 2 as "llama" (SPM),
// whose merge order llama.cpp takes from token scores: a token's score is minus the rank of the
// merge that makes it (earlier merges first, as BPE applies them), 0 for single characters.
std::string add_json_tokenizer(GgufWriter& gguf, const Tokenizer& tok, std::int64_t vocab_size,
                               std::vector<std::string>& warnings) {
  std::vector<std::int32_t> types;
  for (const TokenType t : tok.token_types()) types.push_back(gguf_token_type(t));
  std::vector<std::string> tokens = tok.tokens();
  for (std::size_t i = 0; i < tokens.size(); ++i)  // llama.cpp wants every id spelled
    if (tokens[i].empty()) tokens[i] = "[UNUSED_" + std::to_string(i) + "]";
  // llama.cpp sizes the embedding by the token count: ids the tokenizer never makes (a config's
  // vocab_size rounded up, as Qwen2's) get padding tokens, as convert_hf_to_gguf.py writes them.
  for (auto i = static_cast<std::int64_t>(tokens.size()); i < vocab_size; ++i) {
    tokens.push_back("[PAD" + std::to_string(i) + "]");
    types.push_back(gguf_token_type(TokenType::kUnused));
  }
  const bool spm = tok.pre_tokenizer() == PreTokenizerKind::kSentencePiece;
  gguf.add_string("tokenizer.ggml.model", spm ? "llama" : "gpt2");
  std::string what;
  if (spm) {
    std::vector<float> scores(tokens.size(), 0.0F);
    const auto& merges = tok.merges();
    for (std::size_t r = merges.size(); r-- > 0;)
      if (const auto id = tok.token_id(merges[r].first + merges[r].second))
        scores[static_cast<std::size_t>(*id)] = -static_cast<float>(r) - 1.0F;
    gguf.add_string_array("tokenizer.ggml.tokens", tokens);
    gguf.add_float32_array("tokenizer.ggml.scores", scores);
    gguf.add_int32_array("tokenizer.ggml.token_type", types);
    gguf.add_bool("tokenizer.ggml.add_space_prefix", true);
    what = "SentencePiece-style BPE (llama), ";
  } else {
    const PreTokenizerKind pre = tok.pre_tokenizer();
    gguf.add_string("tokenizer.ggml.pre", pre == PreTokenizerKind::kLlama3  ? "llama-bpe"
                                          : pre == PreTokenizerKind::kQwen2 ? "qwen2"
                                                                            : "gpt-2");
    std::vector<std::string> merges;
    merges.reserve(tok.merges().size());
    for (const auto& [a, b] : tok.merges()) merges.push_back(a + " " + b);
    gguf.add_string_array("tokenizer.ggml.tokens", tokens);
    gguf.add_int32_array("tokenizer.ggml.token_type", types);
    gguf.add_string_array("tokenizer.ggml.merges", merges);
    // What llama.cpp's BPE tokenizer does not do (checked against it in tests/cli/llama_cpp.sh).
    if (tok.normalizer() == "NFC")
      warnings.push_back(
          "tokenizer.json normalises to NFC, llama.cpp's BPE tokenizer does not: text not already "
          "in NFC (decomposed accents) gets other ids under llama.cpp");
    if (tok.encode("a") == tok.encode(" a"))  // ByteLevel add_prefix_space
      warnings.push_back(
          "tokenizer.json adds a space before the text (add_prefix_space), llama.cpp's BPE "
          "tokenizer does not: the first word of a text gets another id under llama.cpp");
    what = std::string("byte-level BPE (gpt2, pre-tokenizer ") +
           pre_tokenizer_name(tok.pre_tokenizer()) + "), ";
  }
  if (const auto id = tok.bos_id()) gguf.add_uint32("tokenizer.ggml.bos_token_id", u32(*id));
  if (const auto id = tok.eos_id()) gguf.add_uint32("tokenizer.ggml.eos_token_id", u32(*id));
  if (const auto id = tok.unk_id()) gguf.add_uint32("tokenizer.ggml.unknown_token_id", u32(*id));
  gguf.add_bool("tokenizer.ggml.add_bos_token", tok.add_bos());
  gguf.add_bool("tokenizer.ggml.add_eos_token", false);
  return what + std::to_string(tokens.size()) + " tokens, " + std::to_string(tok.merges().size()) +
         " merges";
}

// The tokenizer keys: qprune's byte-level models as GPT-2 BPE over the 256 byte stand-ins and no
// merges (llama.cpp then maps every byte of the text to its own id, as qprune does); a
// tokenizer.json (above); else no vocabulary ("none": llama.cpp takes token ids, vocab_size dummy
// tokens).
std::string add_tokenizer(GgufWriter& gguf, const Checkpoint& ckpt, const std::string& arch,
                          std::vector<std::string>& warnings) {
  if (is_byte_level(ckpt)) {
    gguf.add_string("tokenizer.ggml.model", "gpt2");
    gguf.add_string("tokenizer.ggml.pre", "default");
    gguf.add_string_array("tokenizer.ggml.tokens", byte_level_vocabulary());
    gguf.add_int32_array("tokenizer.ggml.token_type", std::vector<std::int32_t>(256, 1));
    gguf.add_string_array("tokenizer.ggml.merges", {});
    gguf.add_bool("tokenizer.ggml.add_bos_token", false);
    gguf.add_bool("tokenizer.ggml.add_eos_token", false);
    return "byte-level (GPT-2 byte vocabulary, 256 tokens, no merges)";
  }
  if (std::filesystem::exists(ckpt.folder() / "tokenizer.json")) {
    const Tokenizer tok = Tokenizer::from_folder(ckpt.folder());
    if (tok.size() > ckpt.config().vocab_size)
      throw InvalidArgument((ckpt.folder() / "tokenizer.json").string() + " has " +
                            std::to_string(tok.size()) + " tokens, the model's vocab_size is " +
                            std::to_string(ckpt.config().vocab_size));
    return add_json_tokenizer(gguf, tok, ckpt.config().vocab_size, warnings);
  }
  gguf.add_string("tokenizer.ggml.model", "none");
  gguf.add_uint32(arch + ".vocab_size", u32(ckpt.config().vocab_size));
  return "none (no tokenizer qprune reads; llama.cpp takes token ids)";
}

// Masks that drop the units contributing exactly nothing: an MLP unit whose down_proj column is
// zero, a query head whose o_proj columns are zero, a KV group all of whose query heads are such.
// `qprune apply` and `prune` pad a global allocation's narrower layers with exactly these, so a
// padded checkpoint converts to the unpadded model it stands for. Removing them changes no output
// (their products are zeros added to a sum). In a GQA layer the query heads go in equal numbers
// per group (llama.cpp needs one group size per layer), whole groups where a group has no live
// head; heads are left as they are when layers would need different head unit kinds.
Masks zero_unit_masks(const Checkpoint& ckpt, std::int64_t& dropped) {
  const ModelConfig& cfg = ckpt.config();
  Masks masks;
  masks.checkpoint = CheckpointIdentity::of(ckpt);
  masks.solver = "zero-units";
  const auto hd = static_cast<Eigen::Index>(cfg.head_dim);
  const auto heads = static_cast<int>(cfg.num_attention_heads);
  const auto kv = static_cast<int>(cfg.num_key_value_heads);
  const int group = heads / kv;
  bool any_mlp = false, any_heads = false;
  std::vector<LayerMask> mlp, att;
  std::optional<UnitKind> head_kind;
  bool mixed = false;
  for (int l = 0; l < cfg.num_hidden_layers; ++l) {
    const std::string p = layer_tensor_prefix(l);
    const Eigen::MatrixXd down = ckpt.read_matrix(p + "mlp.down_proj.weight");
    LayerMask m{l, UnitKind::kMlp, static_cast<int>(down.cols()), {}};
    for (Eigen::Index j = 0; j < down.cols(); ++j)
      if (!down.col(j).isZero(0.0)) m.kept.push_back(static_cast<int>(j));
    if (m.kept.empty()) m.kept.push_back(0);  // llama.cpp's deci skips a layer without MLP units
    any_mlp = any_mlp || static_cast<int>(m.kept.size()) < m.num_units;
    m.keep = static_cast<int>(m.kept.size());
    mlp.push_back(std::move(m));

    const Eigen::MatrixXd o = ckpt.read_matrix(p + "self_attn.o_proj.weight");
    std::vector<bool> live(static_cast<std::size_t>(heads));
    for (int h = 0; h < heads; ++h)
      live[static_cast<std::size_t>(h)] = !o.middleCols(h * hd, hd).isZero(0.0);
    LayerMask a{l, heads == kv ? UnitKind::kHeads : UnitKind::kKvGroups, heads, {}};
    if (heads == kv) {
      for (int h = 0; h < heads; ++h)
        if (live[static_cast<std::size_t>(h)]) a.kept.push_back(h);
    } else {
      // Whole groups without a live head, else the same number of dead heads out of every group.
      std::vector<int> live_per(static_cast<std::size_t>(kv), 0);
      for (int h = 0; h < heads; ++h)
        live_per[static_cast<std::size_t>(h / group)] += live[static_cast<std::size_t>(h)] ? 1 : 0;
      const int dead_groups = static_cast<int>(std::count(live_per.begin(), live_per.end(), 0));
      if (dead_groups > 0) {
        a.num_units = kv;
        for (int g = 0; g < kv; ++g)
          if (live_per[static_cast<std::size_t>(g)] > 0) a.kept.push_back(g);
      } else {
        a.unit = UnitKind::kHeadsPerGroup;
        const int drop = group - *std::max_element(live_per.begin(), live_per.end());
        for (int g = 0; g < kv; ++g) {
          int dropped_here = 0;
          for (int h = g * group; h < (g + 1) * group; ++h)
            if (live[static_cast<std::size_t>(h)] || dropped_here++ >= drop) a.kept.push_back(h);
        }
      }
    }
    if (a.kept.empty()) a.kept.push_back(0);
    const bool removes = static_cast<int>(a.kept.size()) < a.num_units;
    any_heads = any_heads || removes;
    if (removes) {
      mixed = mixed || (head_kind && *head_kind != a.unit);
      head_kind = a.unit;
    }
    a.keep = static_cast<int>(a.kept.size());
    att.push_back(std::move(a));
  }
  dropped = 0;
  if (any_mlp)
    for (LayerMask& m : mlp) {
      dropped += m.num_units - static_cast<std::int64_t>(m.kept.size());
      masks.entries.push_back(std::move(m));
    }
  if (any_heads && !mixed) {
    for (LayerMask& a : att) {
      if (a.unit != *head_kind) {  // a layer with nothing to drop: all of its units, same kind
        a.unit = *head_kind;
        a.num_units = *head_kind == UnitKind::kKvGroups ? kv : heads;
        a.kept.resize(static_cast<std::size_t>(a.num_units));
        std::iota(a.kept.begin(), a.kept.end(), 0);
        a.keep = a.num_units;
      }
      dropped += static_cast<std::int64_t>(a.num_units) - static_cast<std::int64_t>(a.kept.size());
      masks.entries.push_back(std::move(a));
    }
  }
  return masks;
}

}  // namespace

GgufReport write_gguf(const Checkpoint& ckpt, const Masks* masks, const CalibrationStatsFile* stats,
                      const std::filesystem::path& out_file, const ApplyOptions& apply,
                      const GgufOptions& options) {
  const ModelConfig& cfg = ckpt.config();
  if (!cfg.forward_unsupported.empty())
    throw InvalidArgument(ckpt.folder().string() +
                          "/config.json: " + cfg.forward_unsupported.front() +
                          "; the GGUF architectures qprune writes would compute another model");
  if (cfg.rope_scaling.type != RopeScaling::Type::kNone)
    throw InvalidArgument(ckpt.folder().string() + "/config.json: rope_scaling type '" +
                          cfg.rope_scaling.type_name +
                          "': qprune writes no GGUF rope scaling (llama.cpp's rope_freqs); the "
                          "GGUF architectures qprune writes would compute another model");
  if (cfg.moe.num_experts > 0)
    throw InvalidArgument(ckpt.folder().string() + "/config.json: model_type " +
                          model_family_name(cfg.family) +
                          " (mixture of experts): qprune writes GGUF for dense models only; "
                          "convert the pruned Hugging Face folder with llama.cpp's "
                          "convert_hf_to_gguf.py");
  if (options.dtype && *options.dtype != Dtype::kF32 && *options.dtype != Dtype::kF16 &&
      *options.dtype != Dtype::kBF16)
    throw InvalidArgument("GGUF tensors are written as F32, F16 or BF16");
  GgufReport report;
  const Masks zero_units = masks == nullptr && options.drop_zero_units
                               ? zero_unit_masks(ckpt, report.zero_units_dropped)
                               : Masks();
  const Masks& m = masks != nullptr ? *masks : zero_units;
  const detail::RefitProvider provider =
      m.entries.empty() ? detail::RefitProvider(
                              [](int, bool) { return std::optional<detail::RefittedProjection>(); })
                        : detail::refit_provider(ckpt, m, stats, apply, report.warnings);
  detail::PrunedLayers pruned(ckpt, m, provider, false);
  const ModelConfig& next = pruned.report().config;

  for (const detail::PrunedLayers::Widths& w : pruned.widths()) {
    report.mlp_widths.push_back(w.mlp);
    report.heads.push_back(w.heads);
    report.kv_heads.push_back(w.kv_heads);
  }
  auto uniform = [](const std::vector<std::int64_t>& v) {
    return std::all_of(v.begin(), v.end(), [&](std::int64_t x) { return x == v.front(); });
  };
  const bool same_widths =
      uniform(report.mlp_widths) && uniform(report.heads) && uniform(report.kv_heads);
  // llama.cpp's qwen2 loader wants q and o as hidden x hidden (all heads); its llama loader takes
  // any head count, and the same optional q/k/v biases, so a head-pruned Qwen2 is written as llama.
  const bool all_heads = report.heads.front() * cfg.head_dim == cfg.hidden_size;
  const std::string arch = !same_widths                                     ? "deci"
                           : cfg.family == ModelFamily::kQwen2 && all_heads ? "qwen2"
                                                                            : "llama";
  report.architecture = arch;
  // Qwen2 keeps Hugging Face's rotary layout (llama.cpp's NEOX rope); llama and deci use the
  // interleaved one.
  const bool interleave = arch != "qwen2";

  GgufWriter gguf;
  gguf.add_string("general.architecture", arch);
  gguf.add_string("general.name", std::filesystem::absolute(ckpt.folder()).filename().string());
  const GgmlType matrix_type = options.dtype
                                   ? ggml_type_of(*options.dtype)
                                   : ggml_type_of(ckpt.info("model.embed_tokens.weight").dtype);
  // llama_ftype: 0 all F32, 1 mostly F16, 32 mostly BF16.
  gguf.add_uint32("general.file_type", matrix_type == GgmlType::kF32   ? 0
                                       : matrix_type == GgmlType::kF16 ? 1
                                                                       : 32);
  gguf.add_uint32(arch + ".context_length", u32(cfg.max_position_embeddings));
  gguf.add_uint32(arch + ".embedding_length", u32(cfg.hidden_size));
  gguf.add_uint32(arch + ".block_count", u32(cfg.num_hidden_layers));
  auto per_layer = [&](const std::string& key, const std::vector<std::int64_t>& v) {
    if (same_widths) return gguf.add_uint32(key, u32(v.front()));
    std::vector<std::int32_t> a(v.size());
    std::transform(v.begin(), v.end(), a.begin(),
                   [](std::int64_t x) { return static_cast<std::int32_t>(x); });
    gguf.add_int32_array(key, a);
  };
  per_layer(arch + ".feed_forward_length", report.mlp_widths);
  per_layer(arch + ".attention.head_count", report.heads);
  per_layer(arch + ".attention.head_count_kv", report.kv_heads);
  gguf.add_uint32(arch + ".attention.key_length", u32(cfg.head_dim));
  gguf.add_uint32(arch + ".attention.value_length", u32(cfg.head_dim));
  gguf.add_uint32(arch + ".rope.dimension_count", u32(cfg.head_dim));
  gguf.add_float32(arch + ".rope.freq_base", static_cast<float>(cfg.rope_theta));
  gguf.add_float32(arch + ".attention.layer_norm_rms_epsilon",
                   static_cast<float>(cfg.rms_norm_eps));
  report.tokenizer = add_tokenizer(gguf, ckpt, arch, report.warnings);

  // Tensors: embeddings, the layers in order, the final norm and lm_head; each layer's shapes from
  // its own widths.
  struct Planned {
    std::string hf;
    std::string gg;
    std::vector<std::int64_t> shape;  // Hugging Face order
    std::int64_t order = 0;
  };
  std::vector<Planned> planned;
  const std::int64_t last = cfg.num_hidden_layers + 1;
  std::vector<std::string> names = ckpt.tensor_names();
  for (const auto& [name, t] : pruned.added()) names.push_back(name);
  for (const std::string& name : names) {
    const std::optional<std::int64_t> layer = tensor_layer_index(name);
    std::string gg = gguf_name(name, layer);
    if (gg.empty()) continue;
    std::vector<std::int64_t> shape;
    if (layer) {
      const detail::PrunedLayers::Widths& w = pruned.widths()[static_cast<std::size_t>(*layer)];
      ModelConfig c = next;
      c.intermediate_size = w.mlp;
      c.num_attention_heads = w.heads;
      c.num_key_value_heads = w.kv_heads;
      for (const ExpectedTensor& e : known_layer_tensors(c, *layer))
        if (layer_tensor_prefix(*layer) + e.name == name) shape = e.shape;
    } else {
      shape = ckpt.info(name).shape;
    }
    if (shape.empty())
      throw InvalidArgument("tensor " + name + ": no shape known for its GGUF copy");
    const std::int64_t order = name == "model.embed_tokens.weight" ? 0 : layer ? *layer + 1 : last;
    planned.push_back({name, std::move(gg), std::move(shape), order});
  }
  std::stable_sort(planned.begin(), planned.end(), [](const Planned& a, const Planned& b) {
    return a.order != b.order ? a.order < b.order : a.gg < b.gg;
  });

  const std::int64_t hd = cfg.head_dim;
  for (const Planned& p : planned) {
    const bool vector = p.shape.size() == 1;
    // Norm weights and biases as F32 (llama.cpp adds and multiplies them in F32).
    const GgmlType type =
        vector          ? GgmlType::kF32
        : options.dtype ? ggml_type_of(*options.dtype)
                        : (ckpt.contains(p.hf) ? ggml_type_of(ckpt.info(p.hf).dtype) : matrix_type);
    const bool rotary =
        interleave && (p.gg.ends_with("attn_q.weight") || p.gg.ends_with("attn_q.bias") ||
                       p.gg.ends_with("attn_k.weight") || p.gg.ends_with("attn_k.bias"));
    std::vector<std::int64_t> dims(p.shape.rbegin(), p.shape.rend());
    gguf.add_tensor(p.gg, type, dims, [&ckpt, &pruned, p, type, rotary, hd] {
      std::optional<Eigen::MatrixXd> values = pruned.tensor(p.hf);
      const bool source = ckpt.contains(p.hf);
      if (!values && source && !rotary && ckpt.info(p.hf).dtype == dtype_of(type))
        return ckpt.file_of(p.hf).raw_bytes(p.hf);  // unchanged: the bytes as they are
      if (!values && !source)
        throw InvalidArgument("tensor " + p.hf + ": no values for its GGUF copy");
      Eigen::MatrixXd v = values ? std::move(*values) : ckpt.read_matrix(p.hf);
      if (rotary) v = interleave_rotary_rows(v, hd);
      return encode_matrix(v, dtype_of(type), p.hf);
    });
  }
  gguf.write(out_file, options.progress);

  report.stored_parameters = static_cast<std::int64_t>(std::accumulate(
      planned.begin(), planned.end(), std::int64_t{0}, [](std::int64_t a, const Planned& p) {
        return a + std::accumulate(p.shape.begin(), p.shape.end(), std::int64_t{1},
                                   std::multiplies<>());
      }));
  report.file_bytes = std::filesystem::file_size(out_file);
  report.layers = pruned.applied_layers();
  return report;
}

}  // namespace qprune
