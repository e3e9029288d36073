// Calibration statistics and perplexity over token windows (include/qprune/calibration.hpp).
// Statistics are accumulated per batch of windows: each layer's activations of the batch arrive
// through the forward hooks, are added to the double Gram (a symmetric rank-k update of the lower
// triangle) and the column sum, and are dropped; the Gram's upper triangle is filled at the end.
// Batches are grouped into fixed chunks whose sums are added in chunk order by a JobRunner, so the
// statistics are the same bits whether one process or many computed the chunks.
#include "qprune/calibration.hpp"

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/input_file.hpp"
#include "core/interruptible_gram.hpp"
#include "core/json_input.hpp"
#include "core/memory_check.hpp"
#include "problems/checkpoint/mapped_file.hpp"
#include "qprune/calibration_stats.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"
#include "qprune/interrupt.hpp"
#include "qprune/tokenizer.hpp"

namespace qprune {
namespace {

using Eigen::Index;

// The windows [begin, begin + len) of a token range cut with the given stride.
struct Window {
  std::int64_t begin;
  std::int64_t len;
};

std::vector<std::vector<std::int32_t>> materialise(std::span<const std::int32_t> tokens,
                                                   const std::vector<Window>& windows,
                                                   std::size_t first, std::size_t count) {
  std::vector<std::vector<std::int32_t>> seqs;
  for (std::size_t w = first; w < first + count; ++w) {
    const Window& win = windows[w];
    seqs.emplace_back(tokens.begin() + win.begin, tokens.begin() + win.begin + win.len);
  }
  return seqs;
}

void check_positive(std::int64_t value, std::int64_t bound, const char* what) {
  if (value < bound)
    throw InvalidArgument(std::string(what) + " must be >= " + std::to_string(bound) + ", got " +
                          std::to_string(value));
}

}  // namespace

bool is_byte_level(const Checkpoint& checkpoint) {
  if (checkpoint.config().vocab_size != 256) return false;
  const auto path = checkpoint.folder() / "tokenizer_config.json";
  if (!std::filesystem::exists(path)) return false;
  // Malformed or too deeply nested JSON is an error naming the file, not "not byte-level".
  const nlohmann::json j =
      detail::parse_json<nlohmann::json>(detail::read_text_file(path), {path.string()});
  if (!j.is_object()) return false;
  if (j.contains("qprune_byte_level") && j["qprune_byte_level"].is_boolean())
    return j["qprune_byte_level"].get<bool>();
  return j.contains("tokenizer_class") && j["tokenizer_class"] == "ByteLevel";
}

std::vector<std::int32_t> checkpoint_tokens(const Checkpoint& checkpoint, const std::string& text) {
  if (is_byte_level(checkpoint)) return byte_tokens(text);
  const auto tokenizer_json = checkpoint.folder() / "tokenizer.json";
  if (!std::filesystem::exists(tokenizer_json))
    throw InvalidArgument(
        checkpoint.folder().string() +
        " has no tokenizer.json and no byte-level tokenizer (tokenizer_config.json "
        "with \"qprune_byte_level\": true and vocab_size 256): add the model's "
        "tokenizer.json, or tokenise the text and pass the ids (--token-ids; token_ids in "
        "Python)");
  const Tokenizer tokenizer = Tokenizer::from_folder(checkpoint.folder());
  std::vector<std::int32_t> ids = tokenizer.encode(text, tokenizer.add_bos());
  const std::int64_t vocab_size = checkpoint.config().vocab_size;
  for (const std::int32_t id : ids)
    if (id >= vocab_size)
      throw InvalidArgument(tokenizer_json.string() + " gives token id " + std::to_string(id) +
                            " ('" + tokenizer.tokens()[static_cast<std::size_t>(id)] +
                            "'), outside the model's vocab_size " + std::to_string(vocab_size));
  return ids;
}

std::vector<std::int32_t> byte_tokens(const std::string& text) {
  std::vector<std::int32_t> ids(text.size());
  for (std::size_t i = 0; i < text.size(); ++i)
    ids[i] = static_cast<std::int32_t>(static_cast<unsigned char>(text[i]));
  return ids;
}

std::vector<std::int32_t> read_token_ids(const std::filesystem::path& path,
                                         std::int64_t vocab_size) {
  std::istringstream in(detail::read_input_file(path));
  std::vector<std::int32_t> ids;
  std::string line;
  std::int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::istringstream ss(line);
    std::string word;
    while (ss >> word) {
      std::size_t used = 0;
      long long v = -1;
      try {
        v = std::stoll(word, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != word.size() || v < 0 || v >= vocab_size)
        throw ParseError(
            path.string(), line_no,
            "expected a token id in [0, " + std::to_string(vocab_size) + "), found '" + word + "'");
      ids.push_back(static_cast<std::int32_t>(v));
    }
  }
  return ids;
}

void CalibrationOptions::validate() const {
  check_positive(context, 1, "CalibrationOptions.context");
  check_positive(max_tokens, 0, "CalibrationOptions.max_tokens");
  check_positive(windows_per_batch, 1, "CalibrationOptions.windows_per_batch");
  check_positive(batches_per_chunk, 1, "CalibrationOptions.batches_per_chunk");
  if (!mlp && !attn) throw InvalidArgument("CalibrationOptions: neither mlp nor attn selected");
}

void PerplexityOptions::validate() const {
  check_positive(context, 2, "PerplexityOptions.context");
  check_positive(max_tokens, 0, "PerplexityOptions.max_tokens");
  check_positive(windows_per_batch, 1, "PerplexityOptions.windows_per_batch");
}

CalibrationStatistics collect_calibration_statistics(const Transformer& model,
                                                     std::span<const std::int32_t> tokens,
                                                     const CalibrationOptions& options) {
  options.validate();
  if (options.max_tokens > 0 && static_cast<std::int64_t>(tokens.size()) > options.max_tokens)
    tokens = tokens.first(static_cast<std::size_t>(options.max_tokens));
  const auto n = static_cast<std::int64_t>(tokens.size());
  if (n == 0) throw InvalidArgument("collect_calibration_statistics: no tokens");
  const ModelConfig& c = model.config();
  const auto layers = static_cast<std::size_t>(c.num_hidden_layers);

  std::vector<Window> windows;
  for (std::int64_t b = 0; b < n; b += options.context)
    windows.push_back({b, std::min(options.context, n - b)});

  // One flat vector of running sums, per layer: the MLP Gram (lower triangle used) and column sum,
  // or for a MoE layer the expert Gram, token counts, weight sums and the sampled block inputs;
  // then the same two for the o_proj input. A chunk (batches_per_chunk batches) fills its own copy
  // from zero; the runner adds the chunks in chunk order, so any split over processes gives the
  // same bits (a sampled input is written by the one chunk that holds its token, zero elsewhere).
  const Index inter = options.mlp ? c.intermediate_size : 0;
  // Latent attention (DeepSeek-V3): no o_proj input statistics; its heads are not pruned
  // (head_unit_for refuses them), and its o_proj input is heads * v_head_dim wide.
  const bool attn = options.attn && c.mla.kv_lora_rank == 0;
  const Index channels = attn ? c.num_attention_heads * c.head_dim : 0;
  const Index experts = options.mlp ? c.moe.num_experts : 0;
  const Index hidden = c.hidden_size;
  // Sampled tokens for the experts' re-routed scoring: every stride-th token of the stream.
  const std::int64_t stride = options.moe_sample_tokens > 0
                                  ? (n + options.moe_sample_tokens - 1) / options.moe_sample_tokens
                                  : n + 1;
  const Index samples = options.moe_sample_tokens > 0 ? (n + stride - 1) / stride : 0;
  // The sampled inputs are copies, not sums (each is written by the one chunk that holds its
  // token; every other chunk leaves zero bits there), so they travel as F32, two per double of the
  // running sums: half the memory (hidden 7168, 4096 samples: 117 MB per MoE layer and copy, not
  // 235 MB). Adding a chunk's copy to the total's zero bits, or zero bits to it, keeps its bits:
  // the inputs are finite (the forward pass checks every sublayer), so a pair of them is a finite
  // double, and IEEE addition of +0 to a finite double (subnormals too, as the build does not flush
  // them) gives it back exactly. A -0.0f is stored as +0.0f (as the F64 sums did), so no pair is
  // -0.0, the one double that +0 changes.
  const Index packed_inputs = (hidden * samples + 1) / 2;
  struct LayerLayout {
    bool moe = false;
    std::size_t begin = 0;  // of this layer's block in the flat vector
    std::size_t attn = 0;   // of its attention part
  };
  std::vector<LayerLayout> layout(layers);
  std::size_t flat_size = 0;
  for (std::size_t l = 0; l < layers; ++l) {
    layout[l].moe = is_moe_layer(c, static_cast<std::int64_t>(l));
    layout[l].begin = flat_size;
    flat_size += static_cast<std::size_t>(layout[l].moe ? experts * experts + 2 * experts +
                                                              (experts > 0 ? packed_inputs : 0)
                                                        : inter * inter + inter);
    layout[l].attn = flat_size;
    flat_size += static_cast<std::size_t>(channels * channels + channels);
  }
  auto mlp_gram = [&](std::span<double> v, std::size_t l) {
    return Eigen::Map<Eigen::MatrixXd>(v.data() + layout[l].begin, inter, inter);
  };
  auto mlp_sum = [&](std::span<double> v, std::size_t l) {
    return Eigen::Map<Eigen::VectorXd>(v.data() + layout[l].begin + inter * inter, inter);
  };
  auto expert_part = [&](std::span<double> v, std::size_t l, Index part, Index rows, Index cols) {
    const Index at = part == 0 ? 0 : experts * experts + (part - 1) * experts;
    return Eigen::Map<Eigen::MatrixXd>(v.data() + layout[l].begin + at, rows, cols);
  };
  auto attn_gram = [&](std::span<double> v, std::size_t l) {
    return Eigen::Map<Eigen::MatrixXd>(v.data() + layout[l].attn, channels, channels);
  };
  auto attn_sum = [&](std::span<double> v, std::size_t l) {
    return Eigen::Map<Eigen::VectorXd>(v.data() + layout[l].attn + channels * channels, channels);
  };
  auto accumulate = [](Eigen::Map<Eigen::MatrixXd> gram, Eigen::Map<Eigen::VectorXd> sum,
                       const Eigen::MatrixXf& a) {
    const Eigen::MatrixXd ad = a.cast<double>();
    detail::add_gram_lower(gram, ad, "accumulating the calibration Gram matrices");
    sum += ad.rowwise().sum();
  };
  // Expert e's weighted output c_e(t) at the tokens that chose it: G_ef += <c_e, c_f> over the
  // pairs chosen together, the counts and weights, and the sampled inputs.
  auto accumulate_experts = [&](std::span<double> v, std::size_t l, const MoeTrace& trace,
                                std::int64_t first_token) {
    auto gram = expert_part(v, l, 0, experts, experts);
    auto counts = expert_part(v, l, 1, experts, 1);
    auto weight = expert_part(v, l, 2, experts, 1);
    auto* inputs = reinterpret_cast<std::byte*>(expert_part(v, l, 3, packed_inputs, 1).data());
    const Eigen::MatrixXi& chosen = trace.routing->chosen;
    const Index k = chosen.rows();
    for (Index t = 0; t < chosen.cols(); ++t) {
      for (Index a = 0; a < k; ++a) {
        const Index e = chosen(a, t);
        counts(e, 0) += 1.0;
        weight(e, 0) += trace.routing->weights(a, t);
        const auto ca = trace.contributions->col(t * k + a).cast<double>();
        for (Index b = 0; b < k; ++b)
          gram(e, chosen(b, t)) += ca.dot(trace.contributions->col(t * k + b).cast<double>());
      }
      const std::int64_t token = first_token + t;
      if (samples > 0 && token % stride == 0) {
        const Eigen::VectorXf x = trace.input->col(t).array() + 0.0f;  // -0.0f -> +0.0f
        std::memcpy(inputs + static_cast<std::size_t>(token / stride * hidden) * sizeof(float),
                    x.data(), static_cast<std::size_t>(hidden) * sizeof(float));
      }
    }
  };

  const auto per_batch = static_cast<std::size_t>(options.windows_per_batch);
  const std::size_t per_chunk = per_batch * static_cast<std::size_t>(options.batches_per_chunk);
  const std::vector<std::int64_t> chunk_ends = [&] {
    std::vector<std::int64_t> ends;  // token end of each chunk
    for (std::size_t w = 0; w < windows.size(); w += per_chunk) {
      const Window& last = windows[std::min(windows.size(), w + per_chunk) - 1];
      ends.push_back(last.begin + last.len);
    }
    return ends;
  }();
  JobRunner::OrderedSum sum;
  sum.count = chunk_ends.size();
  sum.size = flat_size;
  sum.partial = [&](std::size_t chunk, std::span<double> v) {
    ForwardHooks hooks;
    std::size_t batch_first = 0;  // the batch's first window (the hooks' sequence 0)
    if (options.mlp) {
      hooks.mlp = [&](int layer, int, const Eigen::MatrixXf& a) {
        const auto l = static_cast<std::size_t>(layer);
        accumulate(mlp_gram(v, l), mlp_sum(v, l), a);
      };
      hooks.moe = [&](int layer, int sequence, const MoeTrace& trace) {
        accumulate_experts(v, static_cast<std::size_t>(layer), trace,
                           windows[batch_first + static_cast<std::size_t>(sequence)].begin);
      };
    }
    if (attn)
      hooks.attn = [&](int layer, int, const Eigen::MatrixXf& a) {
        const auto l = static_cast<std::size_t>(layer);
        accumulate(attn_gram(v, l), attn_sum(v, l), a);
      };
    const std::size_t end = std::min(windows.size(), (chunk + 1) * per_chunk);
    for (std::size_t w = chunk * per_chunk; w < end; w += per_batch) {
      batch_first = w;
      model.run_layers(materialise(tokens, windows, w, std::min(per_batch, end - w)), hooks);
    }
  };
  sum.label = [&](std::size_t chunk) {
    const std::int64_t begin = chunk == 0 ? 0 : chunk_ends[chunk - 1];
    return "chunk " + std::to_string(chunk) + " (tokens " + std::to_string(begin) + ".." +
           std::to_string(chunk_ends[chunk]) + ")";
  };
  if (options.progress)
    sum.added = [&](std::size_t chunk) { options.progress(chunk_ends[chunk], n); };
  // The running sums are the big allocation here: one copy per chunk in flight plus the total.
  std::vector<double> total;
  detail::allocation_context("the calibration sums (Gram matrices and means of " +
                                 std::to_string(layers) + " layers, " + std::to_string(sum.size) +
                                 " doubles per copy)",
                             static_cast<double>(sum.size) * sizeof(double), [&] {
                               total.resize(sum.size);
                               runner_or_serial(options.runner).ordered_sum(sum, total);
                             });

  CalibrationStatistics out;
  out.num_tokens = n;
  auto finish = [n](const Eigen::Map<Eigen::MatrixXd>& gram,
                    const Eigen::Map<Eigen::VectorXd>& s_sum) {
    ActivationStats s;
    s.gram = gram;
    s.gram.triangularView<Eigen::StrictlyUpper>() = s.gram.transpose();
    s.mean = s_sum / static_cast<double>(n);
    s.num_tokens = n;
    return s;
  };
  for (std::size_t l = 0; l < layers && options.mlp; ++l) {
    if (!layout[l].moe) {
      out.mlp.push_back(finish(mlp_gram(total, l), mlp_sum(total, l)));
      out.experts.emplace_back();
      continue;
    }
    out.mlp.emplace_back();  // a MoE layer: expert statistics instead
    ExpertStats e;
    e.gram = expert_part(total, l, 0, experts, experts);
    e.tokens = expert_part(total, l, 1, experts, 1).col(0);
    e.weight = expert_part(total, l, 2, experts, 1).col(0);
    e.inputs.resize(hidden, samples);
    std::memcpy(e.inputs.data(), expert_part(total, l, 3, packed_inputs, 1).data(),
                static_cast<std::size_t>(hidden * samples) * sizeof(float));
    e.num_tokens = n;
    out.experts.push_back(std::move(e));
  }
  for (std::size_t l = 0; l < layers && attn; ++l)
    out.attn.push_back(finish(attn_gram(total, l), attn_sum(total, l)));
  return out;
}

void write_calibration_statistics(const CalibrationStatistics& stats, const Checkpoint& checkpoint,
                                  const std::filesystem::path& path, bool compact) {
  const auto layers = static_cast<int>(checkpoint.config().num_hidden_layers);
  CalibrationStatsWriter writer(checkpoint_config_hash(checkpoint), layers, stats.num_tokens,
                                compact ? Dtype::kF32 : Dtype::kF64);
  auto add = [&](const std::vector<ActivationStats>& kind, StatsKind which) {
    for (std::size_t l = 0; l < kind.size(); ++l)
      if (kind[l].gram.size() != 0)  // a MoE layer has no mlp statistics
        writer.add(which, static_cast<int>(l), kind[l].gram, kind[l].mean);
  };
  for (std::size_t l = 0; l < stats.experts.size(); ++l)
    if (stats.experts[l].gram.size() != 0)
      writer.add_experts(static_cast<int>(l), stats.experts[l]);
  add(stats.mlp, StatsKind::kMlp);
  add(stats.attn, StatsKind::kAttn);
  writer.write(path);
}

PerplexityResult evaluate_perplexity(const Transformer& model, std::span<const std::int32_t> tokens,
                                     const PerplexityOptions& options) {
  options.validate();
  if (options.max_tokens > 0 && static_cast<std::int64_t>(tokens.size()) > options.max_tokens)
    tokens = tokens.first(static_cast<std::size_t>(options.max_tokens));
  const auto n = static_cast<std::int64_t>(tokens.size());
  if (n < 2)
    throw InvalidArgument("evaluate_perplexity: need at least 2 tokens, got " + std::to_string(n));
  std::vector<Window> windows;
  for (std::int64_t b = 0; b + 1 < n; b += options.context - 1)
    windows.push_back({b, std::min(options.context, n - b)});

  PerplexityResult r;
  r.num_tokens = n;
  const auto per_batch = static_cast<std::size_t>(options.windows_per_batch);
  for (std::size_t w = 0; w < windows.size(); w += per_batch) {
    throw_if_interrupted("evaluating perplexity");
    const std::size_t count = std::min(per_batch, windows.size() - w);
    const auto lps = model.next_token_log_probs(materialise(tokens, windows, w, count));
    for (const Eigen::VectorXd& lp : lps) {
      r.total_nll -= lp.sum();
      r.num_predicted += lp.size();
    }
    if (options.progress)
      options.progress(windows[w + count - 1].begin + windows[w + count - 1].len, n);
  }
  r.mean_nll = r.total_nll / static_cast<double>(r.num_predicted);
  r.perplexity = std::exp(r.mean_nll);
  // Every log-probability is finite (the forward pass checks its logits), but their mean can
  // still be beyond exp's range: an "inf" perplexity would be printed as a result.
  if (!std::isfinite(r.perplexity))
    throw InvalidArgument("the perplexity exp(" + std::to_string(r.mean_nll) +
                          ") is beyond the double range: the model gives its text a probability "
                          "below e^-709 per token (logits of huge magnitude; check model.norm and "
                          "lm_head of the checkpoint)");
  r.bits_per_token = r.mean_nll / std::log(2.0);
  return r;
}

}  // namespace qprune
