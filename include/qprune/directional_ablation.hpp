// Directional ablation (Arditi et al. 2024, "Refusal in language models is mediated by a single
// direction"), the weight-edit baseline of behaviour-targeted pruning (docs/pruning_math.md 11.6):
// r = (mu_A - mu_B) / ||mu_A - mu_B||, the difference of the mean residual streams on the text
// sets A and B after decoder layer L, is projected out of every matrix that writes into the
// residual stream,
//   W_out <- (I - r r^T) W_out   (o_proj and down_proj of every layer, and their biases),
//   E     <- E (I - r r^T)       (the token embedding, one row per token),
// so that no layer (and no embedding) can write along r: the residual stream's component along r
// is zero at every layer for every input. A weight edit, not pruning; the shapes are unchanged.
// With tied embeddings the edited embedding is also the unembedding (the lm_head then ignores
// the r component of the normalised final state); an untied lm_head is left as it is.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "include/qprune/directional_ablation.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <Eigen/Core>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "qprune/checkpoint.hpp"
#include "qprune/transformer.hpp"

namespace qprune {

struct AblationOptions {
  int layer = 0;                       ///< residual stream after this decoder layer's MLP
  std::int64_t context = 256;          ///< window length in tokens, >= 1
  std::int64_t max_tokens = 0;         ///< at most this many tokens per text; 0: all
  std::int64_t windows_per_batch = 8;  ///< >= 1
  /// Throws InvalidArgument naming the field.
  void validate() const;
};

/// The mean residual stream (hidden) after decoder layer options.layer over `tokens` cut into
/// windows of options.context tokens (each from position 0), accumulated in double. Throws
/// InvalidArgument for an empty token list or a layer out of range.
[[nodiscard]] Eigen::VectorXd residual_stream_mean(const Transformer& model,
                                                   std::span<const std::int32_t> tokens,
                                                   const AblationOptions& options);

struct AblationDirection {
  Eigen::VectorXd direction;         ///< r, unit norm
  Eigen::VectorXd suppress_mean;     ///< mu_A
  Eigen::VectorXd preserve_mean;     ///< mu_B
  double difference_norm = 0.0;      ///< ||mu_A - mu_B||
  std::int64_t suppress_tokens = 0;  ///< tokens of A used
  std::int64_t preserve_tokens = 0;  ///< tokens of B used
};

/// r from the two texts' token ids. Throws InvalidArgument when the means coincide (no direction).
[[nodiscard]] AblationDirection difference_of_means_direction(
    const Transformer& model, std::span<const std::int32_t> suppress_tokens,
    std::span<const std::int32_t> preserve_tokens, const AblationOptions& options);

/// The edits that project r (hidden entries, any norm > 0: normalised here) out of every
/// residual-stream writer of `checkpoint`: every layer's o_proj / down_proj weight (and bias, if
/// stored) and model.embed_tokens.weight, computed lazily per tensor (CheckpointEdits::transform),
/// written in each tensor's own dtype.
[[nodiscard]] CheckpointEdits directional_ablation_edits(const Checkpoint& checkpoint,
                                                         const Eigen::VectorXd& r);

/// The names directional_ablation_edits edits in this checkpoint (those that exist).
[[nodiscard]] std::vector<std::string> residual_writer_names(const Checkpoint& checkpoint);

}  // namespace qprune
