// Calibration statistics and perplexity over token windows (include/qprune/calibration.hpp).
// Statistics are accumulated per batch of windows: each layer's activations of the batch arrive
// through the forward hooks, are added to the double Gram (a symmetric rank-k update of the lower
// triangle) and the column sum, and are dropped; the Gram's upper triangle is filled at the end.
#include "qprune/calibration.hpp"
#include "qprune/calibration_stats.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "problems/checkpoint/mapped_file.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"

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
  const nlohmann::json j = nlohmann::json::parse(detail::read_text_file(path), nullptr, false);
  if (!j.is_object()) return false;
  if (j.contains("qprune_byte_level") && j["qprune_byte_level"].is_boolean())
    return j["qprune_byte_level"].get<bool>();
  return j.contains("tokenizer_class") && j["tokenizer_class"] == "ByteLevel";
}

std::vector<std::int32_t> byte_tokens(const std::string& text) {
  std::vector<std::int32_t> ids(text.size());
  for (std::size_t i = 0; i < text.size(); ++i)
    ids[i] = static_cast<std::int32_t>(static_cast<unsigned char>(text[i]));
  return ids;
}

std::vector<std::int32_t> read_token_ids(const std::filesystem::path& path,
                                         std::int64_t vocab_size) {
  std::ifstream in(path);
  if (!in) throw IoError("cannot read token ids from " + path.string());
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
        throw ParseError(path.string(), line_no,
                         "expected a token id in [0, " + std::to_string(vocab_size) +
                             "), found '" + word + "'");
      ids.push_back(static_cast<std::int32_t>(v));
    }
  }
  return ids;
}

void CalibrationOptions::validate() const {
  check_positive(context, 1, "CalibrationOptions.context");
  check_positive(max_tokens, 0, "CalibrationOptions.max_tokens");
  check_positive(windows_per_batch, 1, "CalibrationOptions.windows_per_batch");
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

  // Running sums: the lower triangle of sum a a^T and sum a, per layer.
  std::vector<Eigen::MatrixXd> mlp_gram, attn_gram;
  std::vector<Eigen::VectorXd> mlp_sum, attn_sum;
  const Index inter = c.intermediate_size;
  const Index channels = c.num_attention_heads * c.head_dim;
  if (options.mlp) {
    mlp_gram.assign(layers, Eigen::MatrixXd::Zero(inter, inter));
    mlp_sum.assign(layers, Eigen::VectorXd::Zero(inter));
  }
  if (options.attn) {
    attn_gram.assign(layers, Eigen::MatrixXd::Zero(channels, channels));
    attn_sum.assign(layers, Eigen::VectorXd::Zero(channels));
  }
  auto accumulate = [](Eigen::MatrixXd& gram, Eigen::VectorXd& sum, const Eigen::MatrixXf& a) {
    const Eigen::MatrixXd ad = a.cast<double>();
    gram.selfadjointView<Eigen::Lower>().rankUpdate(ad);
    sum += ad.rowwise().sum();
  };
  ForwardHooks hooks;
  if (options.mlp)
    hooks.mlp = [&](int layer, int, const Eigen::MatrixXf& a) {
      accumulate(mlp_gram[static_cast<std::size_t>(layer)],
                 mlp_sum[static_cast<std::size_t>(layer)], a);
    };
  if (options.attn)
    hooks.attn = [&](int layer, int, const Eigen::MatrixXf& a) {
      accumulate(attn_gram[static_cast<std::size_t>(layer)],
                 attn_sum[static_cast<std::size_t>(layer)], a);
    };

  std::int64_t done = 0;
  const auto per_batch = static_cast<std::size_t>(options.windows_per_batch);
  for (std::size_t w = 0; w < windows.size(); w += per_batch) {
    const std::size_t count = std::min(per_batch, windows.size() - w);
    const auto seqs = materialise(tokens, windows, w, count);
    model.run_layers(seqs, hooks);
    for (const auto& s : seqs) done += static_cast<std::int64_t>(s.size());
    if (options.progress) options.progress(done, n);
  }

  CalibrationStatistics out;
  out.num_tokens = n;
  auto finish = [n](Eigen::MatrixXd& gram, const Eigen::VectorXd& sum) {
    ActivationStats s;
    gram.triangularView<Eigen::StrictlyUpper>() = gram.transpose();
    s.gram = std::move(gram);
    s.mean = sum / static_cast<double>(n);
    s.num_tokens = n;
    return s;
  };
  for (std::size_t l = 0; l < mlp_gram.size(); ++l) out.mlp.push_back(finish(mlp_gram[l], mlp_sum[l]));
  for (std::size_t l = 0; l < attn_gram.size(); ++l)
    out.attn.push_back(finish(attn_gram[l], attn_sum[l]));
  return out;
}

void write_calibration_statistics(const CalibrationStatistics& stats, const Checkpoint& checkpoint,
                                  const std::filesystem::path& path) {
  const auto layers = static_cast<int>(checkpoint.config().num_hidden_layers);
  CalibrationStatsWriter writer(checkpoint_config_hash(checkpoint), layers, stats.num_tokens);
  auto add = [&](const std::vector<ActivationStats>& kind, StatsKind which) {
    for (std::size_t l = 0; l < kind.size(); ++l)
      writer.add(which, static_cast<int>(l), kind[l].gram, kind[l].mean);
  };
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
  if (n < 2) throw InvalidArgument("evaluate_perplexity: need at least 2 tokens, got " +
                                   std::to_string(n));
  std::vector<Window> windows;
  for (std::int64_t b = 0; b + 1 < n; b += options.context - 1)
    windows.push_back({b, std::min(options.context, n - b)});

  PerplexityResult r;
  r.num_tokens = n;
  const auto per_batch = static_cast<std::size_t>(options.windows_per_batch);
  for (std::size_t w = 0; w < windows.size(); w += per_batch) {
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
  r.bits_per_token = r.mean_nll / std::log(2.0);
  return r;
}

}  // namespace qprune
