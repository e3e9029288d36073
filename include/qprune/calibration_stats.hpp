// Calibration statistics files: the per-layer activation Gram matrices and means that the pruning
// QUBO needs (docs/calibration_stats.md). A safetensors file holding, per decoder layer L,
//   layers.L.mlp.gram  [I, I] F64   sum_t a_t a_t^T of the down_proj input (I = intermediate_size;
//                                  F32 in the compact form, `calibrate --compact`)
//   layers.L.mlp.mean  [I]    F64   (1/T) sum_t a_t
//   layers.L.attn.gram [C, C] F64   the same for the o_proj input (C = heads * head_dim)
//   layers.L.attn.mean [C]    F64
// and per mixture-of-experts layer (instead of the mlp tensors; E experts, S sampled tokens)
//   layers.L.experts.gram   [E, E] F64 sum_t <c_e(t), c_f(t)>, c_e(t) = expert e's weighted output
//                                       at token t (zero when the router did not choose e)
//   layers.L.experts.tokens [E]    F64 tokens that chose each expert
//   layers.L.experts.weight [E]    F64 each expert's routing weight summed over the tokens
//   layers.L.experts.inputs [S, H] F32 the block inputs (after the norm) of S evenly spaced tokens:
//                                       the exact re-routed error of a mask is measured on them
// and in `__metadata__`: format = "qprune-calibration", version = "1", tokens = T, model = the
// checkpoint's config hash (checkpoint_config_hash), num_layers. Either kind (mlp / attn) may be
// absent, but then for every layer (mlp: every layer without experts); means are optional
// (without them no mean compensation).
//
// Reading is lazy: open() validates the header (names, shapes against the config, dtype) and maps
// the file; read_mlp / read_attn read one layer's tensors only, so a caller that works one layer at
// a time holds one layer's statistics at a time.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "include/qprune/calibration_stats.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <Eigen/Core>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "qprune/checkpoint.hpp"
#include "qprune/model_config.hpp"
#include "qprune/pruning.hpp"

namespace qprune {

class Checkpoint;

/// The statistics kinds of one layer.
enum class StatsKind { kMlp, kAttn };
/// "mlp" or "attn" (the tensor name part).
[[nodiscard]] const char* stats_kind_name(StatsKind kind);

/// Hash that identifies a checkpoint's architecture for statistics and masks: "fnv1a64:<16 hex>"
/// of the config.json bytes. Not cryptographic; it guards against mixing up models, not attacks.
[[nodiscard]] std::string checkpoint_config_hash(const Checkpoint& checkpoint);

/// A MoE layer's expert statistics (see the file layout above).
struct ExpertStats {
  Eigen::MatrixXd gram;    ///< E x E
  Eigen::VectorXd tokens;  ///< E
  Eigen::VectorXd weight;  ///< E
  Eigen::MatrixXf inputs;  ///< hidden x S (one column per sampled token)
  std::int64_t num_tokens = 0;
};

/// A calibration statistics file opened read-only (tensors read from the file on demand).
class CalibrationStatsFile {
 public:
  static constexpr const char* kFormat = "qprune-calibration";
  static constexpr int kVersion = 1;

  /// Opens and validates `path`: metadata format/version/tokens/model/num_layers present and
  /// well-formed, every tensor named layers.L.{mlp,attn}.{gram,mean} with L < num_layers, F64,
  /// square Grams and matching means, each kind present for all layers or none. Throws IoError
  /// or ParseError (`path:0: expected ..., found ...`).
  [[nodiscard]] static CalibrationStatsFile open(const std::filesystem::path& path);

  CalibrationStatsFile(CalibrationStatsFile&&) noexcept;
  CalibrationStatsFile& operator=(CalibrationStatsFile&&) noexcept;
  ~CalibrationStatsFile();

  [[nodiscard]] const std::filesystem::path& path() const;
  [[nodiscard]] std::int64_t num_tokens() const;
  [[nodiscard]] int num_layers() const;
  /// The `model` metadata (the checkpoint's config hash).
  [[nodiscard]] const std::string& model() const;
  [[nodiscard]] bool has(StatsKind kind) const;
  [[nodiscard]] bool has_mean(StatsKind kind) const;
  /// Units (channels) of a kind: I for mlp, heads * head_dim for attn; 0 when absent.
  [[nodiscard]] std::int64_t size(StatsKind kind) const;

  /// Checks the file against a checkpoint: same model hash (unless `allow_other_model`), same
  /// layer count, Gram sizes equal to intermediate_size and heads * head_dim. Throws
  /// InvalidArgument naming the tensor, the expected and the found shape.
  void check_against(const ModelConfig& config, const std::string& config_hash,
                     bool allow_other_model = false) const;

  /// One layer's statistics of one kind (Gram, mean if stored, T). Throws InvalidArgument when the
  /// kind is absent or the layer out of range, ParseError naming the tensor on NaN/Inf.
  [[nodiscard]] ActivationStats read(StatsKind kind, int layer) const;
  /// Experts of the MoE layers (0 for a dense model's file).
  [[nodiscard]] std::int64_t num_experts() const;
  /// True when layer `layer` has expert statistics (a MoE layer).
  [[nodiscard]] bool has_experts(int layer) const;
  /// A MoE layer's expert statistics; InvalidArgument when the layer has none.
  [[nodiscard]] ExpertStats read_experts(int layer) const;

 private:
  struct Impl;
  explicit CalibrationStatsFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Writes a calibration statistics file (all layers given are held in memory until write()).
class CalibrationStatsWriter {
 public:
  /// `model`: the checkpoint's config hash; `num_layers`, `num_tokens` > 0. `dtype` kF64 (exact
  /// sums) or kF32 (half the size: the compact form for large models; 7 significant digits,
  /// plenty for problem building and refit, which damp anyway).
  CalibrationStatsWriter(std::string model, int num_layers, std::int64_t num_tokens,
                         Dtype dtype = Dtype::kF64);
  /// Adds one layer's statistics (gram n x n, mean n or empty). Throws InvalidArgument on a size
  /// mismatch, a layer out of range or given twice, or a non-finite value.
  void add(StatsKind kind, int layer, const Eigen::MatrixXd& gram, const Eigen::VectorXd& mean);
  /// Adds a MoE layer's expert statistics (that layer then has no mlp statistics). Throws
  /// InvalidArgument on inconsistent sizes, a layer given twice or a non-finite value.
  void add_experts(int layer, const ExpertStats& stats);
  /// Writes through a temporary file and a rename. Throws InvalidArgument when a kind is given for
  /// some layers but not all, IoError on write failures.
  void write(const std::filesystem::path& path) const;

 private:
  std::string model_;
  int num_layers_;
  std::int64_t num_tokens_;
  Dtype dtype_;
  std::map<std::pair<int, int>, std::pair<Eigen::MatrixXd, Eigen::VectorXd>> layers_;
  std::map<int, ExpertStats> experts_;
};

/// Statistics of activations A (n x T, one column per token): gram = A A^T, mean = row means, T.
[[nodiscard]] ActivationStats statistics_of(const Eigen::MatrixXd& activations);

}  // namespace qprune
