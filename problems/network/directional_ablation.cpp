// Directional ablation (include/qprune/directional_ablation.hpp): the difference-of-means
// direction of the residual stream from the forward pass's stream hook, and the weight edits that
// project it out of every residual-stream writer. docs/pruning_math.md section 11.6.
#include "qprune/directional_ablation.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

#include "qprune/error.hpp"

namespace qprune {

void AblationOptions::validate() const {
  if (layer < 0) throw InvalidArgument("AblationOptions::layer must be >= 0");
  if (context < 1) throw InvalidArgument("AblationOptions::context must be >= 1");
  if (max_tokens < 0) throw InvalidArgument("AblationOptions::max_tokens must be >= 0");
  if (windows_per_batch < 1)
    throw InvalidArgument("AblationOptions::windows_per_batch must be >= 1");
}

Eigen::VectorXd residual_stream_mean(const Transformer& model, std::span<const std::int32_t> tokens,
                                     const AblationOptions& options) {
  options.validate();
  const ModelConfig& cfg = model.config();
  if (options.layer >= cfg.num_hidden_layers)
    throw InvalidArgument("layer " + std::to_string(options.layer) + " out of range [0, " +
                          std::to_string(cfg.num_hidden_layers) + ")");
  std::size_t total = tokens.size();
  if (options.max_tokens > 0) total = std::min(total, static_cast<std::size_t>(options.max_tokens));
  if (total == 0) throw InvalidArgument("residual_stream_mean: no tokens");
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(cfg.hidden_size);
  ForwardHooks hooks;
  hooks.stream = [&](int layer, int, bool after_mlp, const Eigen::MatrixXf& x) {
    if (layer == options.layer && after_mlp) sum += x.cast<double>().rowwise().sum();
  };
  const auto context = static_cast<std::size_t>(options.context);
  const auto per_batch = static_cast<std::size_t>(options.windows_per_batch);
  std::vector<std::vector<std::int32_t>> batch;
  for (std::size_t start = 0; start < total; start += context) {
    const std::size_t end = std::min(total, start + context);
    batch.emplace_back(tokens.begin() + static_cast<std::ptrdiff_t>(start),
                       tokens.begin() + static_cast<std::ptrdiff_t>(end));
    if (batch.size() == per_batch || end == total) {
      model.run_layers(batch, hooks, options.layer + 1);
      batch.clear();
    }
  }
  return sum / static_cast<double>(total);
}

AblationDirection difference_of_means_direction(const Transformer& model,
                                                std::span<const std::int32_t> suppress_tokens,
                                                std::span<const std::int32_t> preserve_tokens,
                                                const AblationOptions& options) {
  AblationDirection d;
  d.suppress_mean = residual_stream_mean(model, suppress_tokens, options);
  d.preserve_mean = residual_stream_mean(model, preserve_tokens, options);
  auto used = [&](std::size_t n) {
    return static_cast<std::int64_t>(
        options.max_tokens > 0 ? std::min(n, static_cast<std::size_t>(options.max_tokens)) : n);
  };
  d.suppress_tokens = used(suppress_tokens.size());
  d.preserve_tokens = used(preserve_tokens.size());
  const Eigen::VectorXd diff = d.suppress_mean - d.preserve_mean;
  d.difference_norm = diff.norm();
  if (!(d.difference_norm > 1e-12 * std::max(1.0, d.preserve_mean.norm())))
    throw InvalidArgument("the two texts have the same mean residual stream after layer " +
                          std::to_string(options.layer) + " (difference norm " +
                          std::to_string(d.difference_norm) + "): no direction to ablate");
  d.direction = diff / d.difference_norm;
  return d;
}

std::vector<std::string> residual_writer_names(const Checkpoint& checkpoint) {
  std::vector<std::string> names;
  auto add = [&](const std::string& n) {
    if (checkpoint.contains(n)) names.push_back(n);
  };
  add("model.embed_tokens.weight");
  for (int l = 0; l < checkpoint.config().num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const char* t : {"self_attn.o_proj.weight", "self_attn.o_proj.bias",
                          "mlp.down_proj.weight", "mlp.down_proj.bias"})
      add(p + t);
  }
  return names;
}

CheckpointEdits directional_ablation_edits(const Checkpoint& checkpoint, const Eigen::VectorXd& r) {
  const Eigen::Index hidden = checkpoint.config().hidden_size;
  if (r.size() != hidden || !r.allFinite() || !(r.norm() > 0.0))
    throw InvalidArgument("directional_ablation_edits: the direction must have hidden_size = " +
                          std::to_string(hidden) + " finite entries, not all zero");
  const auto names = std::make_shared<std::vector<std::string>>(residual_writer_names(checkpoint));
  const Eigen::VectorXd unit = r / r.norm();
  CheckpointEdits edits;
  edits.transform = [&checkpoint, names,
                     unit](const std::string& name) -> std::optional<Eigen::MatrixXd> {
    if (std::find(names->begin(), names->end(), name) == names->end()) return std::nullopt;
    Eigen::MatrixXd w = checkpoint.read_matrix(name);
    if (name == "model.embed_tokens.weight") {
      w -= (w * unit) * unit.transpose();  // rows are the vectors written: E (I - r r^T)
    } else {
      w -= unit * (unit.transpose() * w);  // columns (or the bias) write: (I - r r^T) W
    }
    return w;
  };
  return edits;
}

}  // namespace qprune
