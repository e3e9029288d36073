// apply_masks: a pruned checkpoint from masks. Checks the masks against the checkpoint (identity,
// feasibility, one width for every layer), plans the new config and the added bias tensors, then
// lets write_checkpoint pull each layer's sliced (and optionally re-fitted) tensors through
// CheckpointEdits::transform, so only one layer's edits are held at a time.
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "qprune/error.hpp"
#include "qprune/interrupt.hpp"
#include "qprune/prune_pipeline.hpp"
#include "qprune/pruning_refit.hpp"
#include "workflows/pruning/pruned_writer.hpp"

namespace qprune {
namespace {

std::string layer_prefix(int layer) { return "model.layers." + std::to_string(layer) + "."; }

// Rows (or columns) of `w` in blocks of `block` for each index in `units` (increasing).
Eigen::MatrixXd take_rows(const Eigen::MatrixXd& w, const std::vector<int>& units, int block) {
  Eigen::MatrixXd out(static_cast<Eigen::Index>(units.size()) * block, w.cols());
  for (std::size_t u = 0; u < units.size(); ++u)
    out.middleRows(static_cast<Eigen::Index>(u) * block, block) =
        w.middleRows(static_cast<Eigen::Index>(units[u]) * block, block);
  return out;
}
Eigen::MatrixXd take_cols(const Eigen::MatrixXd& w, const std::vector<int>& units, int block) {
  Eigen::MatrixXd out(w.rows(), static_cast<Eigen::Index>(units.size()) * block);
  for (std::size_t u = 0; u < units.size(); ++u)
    out.middleCols(static_cast<Eigen::Index>(u) * block, block) =
        w.middleCols(static_cast<Eigen::Index>(units[u]) * block, block);
  return out;
}

// Rows (or columns) of `w` in blocks of `block` for each slot (-1: a zero block).
Eigen::MatrixXd slot_rows(const Eigen::MatrixXd& w, const std::vector<int>& slots, int block) {
  Eigen::MatrixXd out =
      Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(slots.size()) * block, w.cols());
  for (std::size_t u = 0; u < slots.size(); ++u)
    if (slots[u] >= 0)
      out.middleRows(static_cast<Eigen::Index>(u) * block, block) =
          w.middleRows(static_cast<Eigen::Index>(slots[u]) * block, block);
  return out;
}
Eigen::MatrixXd slot_cols(const Eigen::MatrixXd& w, const std::vector<int>& slots, int block) {
  Eigen::MatrixXd out =
      Eigen::MatrixXd::Zero(w.rows(), static_cast<Eigen::Index>(slots.size()) * block);
  for (std::size_t u = 0; u < slots.size(); ++u)
    if (slots[u] >= 0)
      out.middleCols(static_cast<Eigen::Index>(u) * block, block) =
          w.middleCols(static_cast<Eigen::Index>(slots[u]) * block, block);
  return out;
}

// Kept query heads and KV groups of one head entry, and where they go in the written layer:
// slot s of the KV heads reads group kv_slot[s], slot s * per_group + j of the query heads reads
// head head_slot[...]; -1 is a zero (padding) slot, for layers that keep fewer heads than the
// widest one (a global allocation).
struct HeadPlan {
  std::vector<int> heads;
  std::vector<int> kv;
  std::vector<int> kv_slot;
  std::vector<int> head_slot;
};
HeadPlan head_plan(const ModelConfig& cfg, const LayerMask& e) {
  const int heads = static_cast<int>(cfg.num_attention_heads);
  const int kv = static_cast<int>(cfg.num_key_value_heads);
  const int group = heads / kv;
  HeadPlan p;
  const std::string where =
      "masks entry layer " + std::to_string(e.layer) + " " + unit_kind_name(e.unit);
  switch (e.unit) {
    case UnitKind::kHeads:
      if (kv != heads)
        throw InvalidArgument(where + ": unit 'heads' needs multi-head attention; the model has " +
                              std::to_string(kv) + " KV heads for " + std::to_string(heads));
      p.heads = p.kv = e.kept;
      break;
    case UnitKind::kKvGroups:
      p.kv = e.kept;
      for (int g : e.kept)
        for (int h = 0; h < group; ++h) p.heads.push_back(g * group + h);
      break;
    case UnitKind::kHeadsPerGroup: {
      p.heads = e.kept;
      for (int g = 0; g < kv; ++g) p.kv.push_back(g);
      std::vector<int> per(static_cast<std::size_t>(kv), 0);
      for (int h : e.kept) ++per[static_cast<std::size_t>(h / group)];
      for (int c : per)
        if (c != per[0] || c == 0)
          throw InvalidArgument(where +
                                ": every KV group must keep the same number of heads (>= 1)");
      break;
    }
    case UnitKind::kMlp:
      break;
  }
  if (e.num_units != (e.unit == UnitKind::kKvGroups ? kv : heads))
    throw InvalidArgument(where + ": " + std::to_string(e.num_units) + " units, the model has " +
                          std::to_string(e.unit == UnitKind::kKvGroups ? kv : heads));
  return p;
}

// Zero rows (or columns) appended up to `size`: the padding of a layer narrower than the widest.
Eigen::MatrixXd pad_rows(Eigen::MatrixXd w, Eigen::Index size) {
  const Eigen::Index old = w.rows();
  w.conservativeResize(size, Eigen::NoChange);
  w.bottomRows(size - old).setZero();
  return w;
}
Eigen::MatrixXd pad_cols(Eigen::MatrixXd w, Eigen::Index size) {
  const Eigen::Index old = w.cols();
  w.conservativeResize(Eigen::NoChange, size);
  w.rightCols(size - old).setZero();
  return w;
}

// The entries of one kind, one per layer, all feasible and complete; of one width unless `ragged`
// (MLP: a global allocation, padded by the caller).
std::vector<const LayerMask*> layer_entries(const Masks& masks, const ModelConfig& cfg, bool mlp,
                                            bool ragged) {
  std::vector<const LayerMask*> by_layer(static_cast<std::size_t>(cfg.num_hidden_layers), nullptr);
  bool any = false;
  for (const LayerMask& e : masks.entries) {
    if ((e.unit == UnitKind::kMlp) != mlp) continue;
    if (e.layer >= cfg.num_hidden_layers)
      throw InvalidArgument("masks entry for layer " + std::to_string(e.layer) +
                            ", the model has " + std::to_string(cfg.num_hidden_layers) + " layers");
    by_layer[static_cast<std::size_t>(e.layer)] = &e;
    any = true;
  }
  if (!any) return {};
  const char* kind = mlp ? "mlp" : "head";
  const LayerMask* first = nullptr;
  for (const LayerMask* e : by_layer) {
    if (e == nullptr)
      throw InvalidArgument(std::string("masks have ") + kind +
                            " entries for some layers but not " +
                            "all; a standard config needs the same width in every layer");
    if (!e->feasible)
      throw InvalidArgument("masks entry layer " + std::to_string(e->layer) + " " +
                            unit_kind_name(e->unit) + " is infeasible (keeps " +
                            std::to_string(e->kept.size()) +
                            "); re-import it with --repair or solve again");
    if (!e->complete())
      throw InvalidArgument("masks entry layer " + std::to_string(e->layer) + " " +
                            unit_kind_name(e->unit) +
                            " comes from an interrupted solve; finish it with `qprune mask "
                            "--resume` first");
    if (e->kept.empty())
      throw InvalidArgument("masks entry layer " + std::to_string(e->layer) + " keeps no unit");
    if (mlp && e->num_units != cfg.intermediate_size)
      throw InvalidArgument("masks entry layer " + std::to_string(e->layer) + " mlp has " +
                            std::to_string(e->num_units) + " units, intermediate_size is " +
                            std::to_string(cfg.intermediate_size));
    if (first == nullptr) first = e;
    if (e->unit != first->unit || (!ragged && e->kept.size() != first->kept.size()))
      throw InvalidArgument(
          std::string("masks keep different ") + kind + " widths per layer (layer " +
          std::to_string(first->layer) + ": " + std::to_string(first->kept.size()) + " " +
          unit_kind_name(first->unit) + ", layer " + std::to_string(e->layer) + ": " +
          std::to_string(e->kept.size()) + " " + unit_kind_name(e->unit) +
          "); apply needs one unit kind and, without padding, one width in every layer");
  }
  return by_layer;
}

}  // namespace

namespace detail {

ApplyReport write_pruned_checkpoint(const Checkpoint& ckpt, const Masks& masks,
                                    const RefitProvider& refitted,
                                    const std::filesystem::path& out_folder,
                                    const CheckpointWriteOptions& write) {
  masks.check_identity(ckpt);
  const ModelConfig& cfg = ckpt.config();
  const std::vector<const LayerMask*> mlp = layer_entries(masks, cfg, true, true);
  const std::vector<const LayerMask*> att = layer_entries(masks, cfg, false, true);
  if (mlp.empty() && att.empty()) throw InvalidArgument("masks have no entries");
  const bool compensate = masks.mean_compensation;
  if (compensate && !bias_compensation_supported(cfg))
    throw InvalidArgument(
        std::string("masks ask for mean compensation, which needs a bias that a ") +
        model_family_name(cfg.family) + " config cannot hold (docs/pruning_math.md)");

  ApplyReport report;
  ModelConfig next = cfg;
  CheckpointEdits edits;
  const int hd = static_cast<int>(cfg.head_dim);
  std::vector<HeadPlan> plans;
  plans.reserve(att.size());
  for (const LayerMask* e : att) plans.push_back(head_plan(cfg, *e));
  auto add_new = [&](const std::string& name, const std::string& like, std::int64_t size) {
    edits.add[name] = {like, {size}, {}};
    report.added_tensors.push_back(name);
  };
  // MLP width: the widest layer's kept count; narrower layers are padded with zero units.
  std::int64_t mlp_width = 0;
  for (const LayerMask* e : mlp) {
    const auto k = static_cast<std::int64_t>(e->kept.size());
    report.padded = report.padded || (mlp_width != 0 && k != mlp_width);
    mlp_width = std::max(mlp_width, k);
  }
  if (!mlp.empty()) {
    const std::int64_t k = mlp_width;
    next.intermediate_size = k;
    if (compensate && !cfg.mlp_bias) {
      next.mlp_bias = true;
      for (int l = 0; l < cfg.num_hidden_layers; ++l) {
        const std::string p = layer_prefix(l) + "mlp.";
        add_new(p + "gate_proj.bias", p + "gate_proj.weight", k);
        add_new(p + "up_proj.bias", p + "up_proj.weight", k);
        add_new(p + "down_proj.bias", p + "down_proj.weight", cfg.hidden_size);
      }
    }
  }
  if (!att.empty()) {
    // The widest layer sets the written shape: its KV heads and its query heads per KV head;
    // narrower layers get zero slots (a zero o_proj column block adds nothing to the output).
    std::size_t out_kv = 0, per_group = 0;
    for (const HeadPlan& pl : plans) {
      out_kv = std::max(out_kv, pl.kv.size());
      per_group = std::max(per_group, pl.heads.size() / pl.kv.size());
    }
    const int group = static_cast<int>(cfg.num_attention_heads / cfg.num_key_value_heads);
    for (HeadPlan& pl : plans) {
      pl.kv_slot.assign(out_kv, -1);
      pl.head_slot.assign(out_kv * per_group, -1);
      for (std::size_t sl = 0; sl < pl.kv.size(); ++sl) {
        pl.kv_slot[sl] = pl.kv[sl];
        std::size_t j = 0;
        for (const int h : pl.heads)
          if (h / group == pl.kv[sl]) pl.head_slot[sl * per_group + j++] = h;
      }
      report.padded = report.padded || pl.head_slot.size() > pl.heads.size();
    }
    next.num_attention_heads = static_cast<std::int64_t>(out_kv * per_group);
    next.num_key_value_heads = static_cast<std::int64_t>(out_kv);
    if (compensate && !cfg.o_proj_bias) {
      next.attention_bias = next.o_proj_bias = true;
      for (int l = 0; l < cfg.num_hidden_layers; ++l) {
        const std::string p = layer_prefix(l) + "self_attn.";
        add_new(p + "q_proj.bias", p + "q_proj.weight", next.num_attention_heads * hd);
        add_new(p + "k_proj.bias", p + "k_proj.weight", next.num_key_value_heads * hd);
        add_new(p + "v_proj.bias", p + "v_proj.weight", next.num_key_value_heads * hd);
        add_new(p + "o_proj.bias", p + "o_proj.weight", cfg.hidden_size);
      }
    }
  }
  report.config = next;
  // Zeros stored by the head padding: per padded query head its q rows and o_proj columns, per
  // padded KV head its k and v rows, and their bias entries where the output has biases.
  for (std::size_t i = 0; i < att.size(); ++i) {
    const HeadPlan& pl = plans[i];
    const std::string a = layer_prefix(att[i]->layer) + "self_attn.";
    const auto biased = [&](const char* t) {
      return ckpt.contains(a + t) || edits.add.count(a + t) != 0 ? 1 : 0;
    };
    const auto pad_heads = static_cast<std::int64_t>(pl.head_slot.size() - pl.heads.size());
    const auto pad_kv = static_cast<std::int64_t>(pl.kv_slot.size() - pl.kv.size());
    report.padding_parameters +=
        pad_heads * hd * (2 * cfg.hidden_size + biased("q_proj.bias")) +
        pad_kv * hd * (2 * cfg.hidden_size + biased("k_proj.bias") + biased("v_proj.bias"));
  }
  // Zeros stored by the MLP padding: per missing unit, a down_proj column and the gate/up rows (and
  // their bias entries when the output has those biases).
  for (const LayerMask* e : mlp) {
    const std::string m = layer_prefix(e->layer) + "mlp.";
    const bool unit_bias =
        ckpt.contains(m + "gate_proj.bias") || edits.add.count(m + "gate_proj.bias");
    report.padding_parameters += (mlp_width - static_cast<std::int64_t>(e->kept.size())) *
                                 (3 * cfg.hidden_size + (unit_bias ? 2 : 0));
  }

  // One layer's new tensors, computed when the writer first asks for a tensor of that layer.
  int cached_layer = -1;
  std::map<std::string, Eigen::MatrixXd> cache;
  std::map<std::pair<int, int>, AppliedLayer> applied;
  auto compute_layer = [&](int l) {
    cache.clear();
    cached_layer = l;
    const std::string p = layer_prefix(l);
    auto has = [&](const std::string& n) { return ckpt.contains(n); };
    if (!mlp.empty()) {
      const LayerMask& e = *mlp[static_cast<std::size_t>(l)];
      const std::string m = p + "mlp.";
      const auto width = static_cast<Eigen::Index>(mlp_width);
      // Each read converts a whole projection (seconds at 7B size): check Ctrl-C between them.
      throw_if_interrupted("slicing the checkpoint");
      cache[m + "gate_proj.weight"] =
          pad_rows(take_rows(ckpt.read_matrix(m + "gate_proj.weight"), e.kept, 1), width);
      throw_if_interrupted("slicing the checkpoint");
      cache[m + "up_proj.weight"] =
          pad_rows(take_rows(ckpt.read_matrix(m + "up_proj.weight"), e.kept, 1), width);
      throw_if_interrupted("slicing the checkpoint");
      const Eigen::MatrixXd down = ckpt.read_matrix(m + "down_proj.weight");
      const auto k = static_cast<Eigen::Index>(e.kept.size());
      for (const char* b : {"gate_proj.bias", "up_proj.bias"})
        cache[m + b] = has(m + b) ? pad_rows(take_rows(ckpt.read_matrix(m + b), e.kept, 1), width)
                                  : Eigen::MatrixXd::Zero(width, 1);
      Eigen::VectorXd bias = has(m + "down_proj.bias") ? ckpt.read_vector(m + "down_proj.bias")
                                                       : Eigen::VectorXd::Zero(down.rows());
      AppliedLayer a{l, e.unit, static_cast<int>(k), compensate, 0.0, 0.0};
      if (std::optional<RefittedProjection> r = refitted(l, true)) {
        cache[m + "down_proj.weight"] = pad_cols(
            r->kept_columns.size() != 0 ? std::move(r->kept_columns) : take_cols(down, e.kept, 1),
            width);
        if (r->output_bias.size() != 0) bias += r->output_bias;
        a.error_without_refit = r->error_without_refit;
        a.error_with_refit = r->error_with_refit;
      } else {
        cache[m + "down_proj.weight"] = pad_cols(take_cols(down, e.kept, 1), width);
      }
      cache[m + "down_proj.bias"] = bias;
      applied[{l, 0}] = a;
    }
    if (!att.empty()) {
      const LayerMask& e = *att[static_cast<std::size_t>(l)];
      const HeadPlan& plan = plans[static_cast<std::size_t>(l)];
      const std::string s = p + "self_attn.";
      throw_if_interrupted("slicing the checkpoint");
      cache[s + "q_proj.weight"] =
          slot_rows(ckpt.read_matrix(s + "q_proj.weight"), plan.head_slot, hd);
      for (const char* w : {"k_proj.weight", "v_proj.weight"}) {
        throw_if_interrupted("slicing the checkpoint");
        cache[s + w] = slot_rows(ckpt.read_matrix(s + w), plan.kv_slot, hd);
      }
      const std::pair<const char*, const std::vector<int>*> biases[] = {
          {"q_proj.bias", &plan.head_slot},
          {"k_proj.bias", &plan.kv_slot},
          {"v_proj.bias", &plan.kv_slot}};
      for (const auto& [b, slots] : biases)
        cache[s + b] =
            has(s + b) ? slot_rows(ckpt.read_matrix(s + b), *slots, hd)
                       : Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(slots->size()) * hd, 1);
      throw_if_interrupted("slicing the checkpoint");
      const Eigen::MatrixXd wo = ckpt.read_matrix(s + "o_proj.weight");
      Eigen::VectorXd bias = has(s + "o_proj.bias") ? ckpt.read_vector(s + "o_proj.bias")
                                                    : Eigen::VectorXd::Zero(wo.rows());
      AppliedLayer a{l, e.unit, static_cast<int>(e.kept.size()), compensate, 0.0, 0.0};
      if (std::optional<RefittedProjection> r = refitted(l, false)) {
        // The refitted columns hold the kept heads in increasing order; put each in its slot.
        std::vector<int> index_slot(plan.head_slot.size(), -1);
        for (std::size_t sl = 0; sl < plan.head_slot.size(); ++sl)
          if (plan.head_slot[sl] >= 0)
            index_slot[sl] = static_cast<int>(
                std::lower_bound(plan.heads.begin(), plan.heads.end(), plan.head_slot[sl]) -
                plan.heads.begin());
        cache[s + "o_proj.weight"] = r->kept_columns.size() != 0
                                         ? slot_cols(r->kept_columns, index_slot, hd)
                                         : slot_cols(wo, plan.head_slot, hd);
        if (r->output_bias.size() != 0) bias += r->output_bias;
        if (r->value_bias.size() != 0) {
          const auto kept_rows = static_cast<Eigen::Index>(plan.kv.size()) * hd;
          if (r->value_bias.size() != kept_rows)
            throw InvalidArgument("value bias of layer " + std::to_string(l) + " has " +
                                  std::to_string(r->value_bias.size()) + " entries, expected " +
                                  std::to_string(kept_rows));
          if (!has(s + "v_proj.bias"))
            throw InvalidArgument("layer " + std::to_string(l) +
                                  " has no v_proj.bias to hold "
                                  "the mean compensation");
          cache[s + "v_proj.bias"].col(0).head(kept_rows) += r->value_bias;
        }
        a.error_without_refit = r->error_without_refit;
        a.error_with_refit = r->error_with_refit;
      } else {
        cache[s + "o_proj.weight"] = slot_cols(wo, plan.head_slot, hd);
      }
      cache[s + "o_proj.bias"] = bias;
      applied[{l, 1}] = a;
    }
  };
  edits.transform = [&](const std::string& name) -> std::optional<Eigen::MatrixXd> {
    // Checkpoint::open refused any `model.layers.` name without a layer below num_hidden_layers.
    const std::optional<std::int64_t> layer = tensor_layer_index(name);
    if (!layer) return std::nullopt;
    const int l = static_cast<int>(*layer);
    if (l != cached_layer) compute_layer(l);
    const auto it = cache.find(name);
    if (it == cache.end()) return std::nullopt;
    return it->second;
  };

  // config.json: the new widths, and head_dim spelled out (it no longer follows from
  // hidden_size / num_attention_heads once heads are removed).
  nlohmann::json j = nlohmann::json::parse(next.to_json());  // sorted keys, as HF writes
  if (!att.empty()) j["head_dim"] = cfg.head_dim;
  edits.config_json = j.dump(2) + "\n";
  // Counted in the new folder before it moves into place: after the move another apply into the
  // same -o may already have replaced it.
  CheckpointWriteOptions write_options = write;
  write_options.before_commit = [&](const std::filesystem::path& staged) {
    report.stored_parameters = Checkpoint::open(staged).num_parameters();
  };
  write_checkpoint(ckpt, out_folder, edits, write_options);
  for (const auto& [key, a] : applied) report.layers.push_back(a);
  return report;
}

}  // namespace detail

ApplyReport apply_masks(const Checkpoint& ckpt, const Masks& masks,
                        const CalibrationStatsFile* stats, const std::filesystem::path& out_folder,
                        const ApplyOptions& options) {
  masks.check_identity(ckpt);
  options.refit_options.validate();
  const ModelConfig& cfg = ckpt.config();
  const bool compensate = masks.mean_compensation;
  if ((compensate || options.refit) && stats == nullptr)
    throw InvalidArgument(std::string(options.refit ? "--refit" : "mean compensation") +
                          " needs the calibration statistics (--calib)");
  if (stats != nullptr) {
    stats->check_against(cfg, checkpoint_config_hash(ckpt));
    for (const bool mlp : {true, false}) {
      const bool present =
          std::any_of(masks.entries.begin(), masks.entries.end(),
                      [&](const LayerMask& e) { return (e.unit == UnitKind::kMlp) == mlp; });
      const StatsKind kind = mlp ? StatsKind::kMlp : StatsKind::kAttn;
      if (present && (compensate || options.refit) &&
          (!stats->has(kind) || (compensate && !stats->has_mean(kind))))
        throw InvalidArgument(stats->path().string() + ": no " + (mlp ? "MLP" : "attention") +
                              " statistics (gram and mean)");
    }
  }
  // Refit (or compensation alone) from the statistics of the original model, per layer.
  const int hd = static_cast<int>(cfg.head_dim);
  // Tokens against kept channels, up front (before anything is written), by the rule prune uses:
  // per unit kind the layer that keeps the most channels decides.
  std::vector<std::string> warnings;
  if (options.refit) {
    for (const bool mlp : {true, false}) {
      const LayerMask* widest = nullptr;
      std::int64_t kept = 0;
      for (const LayerMask& e : masks.entries) {
        if ((e.unit == UnitKind::kMlp) != mlp) continue;
        const auto k = static_cast<std::int64_t>(
            mlp ? e.kept.size() : head_plan(cfg, e).heads.size() * static_cast<std::size_t>(hd));
        if (widest == nullptr || k > kept) widest = &e, kept = k;
      }
      if (widest == nullptr) continue;
      const std::string where = "layer " + std::to_string(widest->layer) + " " +
                                (mlp ? "mlp.down_proj" : "self_attn.o_proj") + " (statistics " +
                                stats->path().string() + ")";
      std::string msg = check_refit_tokens(stats->num_tokens(), kept, where, false,
                                           "calibrate on more text, or apply without --refit");
      if (!msg.empty()) warnings.push_back(std::move(msg));
    }
  }
  const detail::RefitProvider provider =
      [&](int l, bool mlp) -> std::optional<detail::RefittedProjection> {
    if (!options.refit && !compensate) return std::nullopt;
    const LayerMask* e = masks.find(l, mlp);
    const std::string name =
        layer_prefix(l) + (mlp ? "mlp.down_proj.weight" : "self_attn.o_proj.weight");
    const Eigen::MatrixXd w = ckpt.read_matrix(name);
    Assignment keep(static_cast<std::size_t>(w.cols()), 0);
    if (mlp) {
      for (const int i : e->kept) keep[static_cast<std::size_t>(i)] = 1;
    } else {
      for (const int h : head_plan(cfg, *e).heads)
        for (int c = 0; c < hd; ++c)
          keep[static_cast<std::size_t>(h) * static_cast<std::size_t>(hd) +
               static_cast<std::size_t>(c)] = 1;
    }
    const ActivationStats s = stats->read(mlp ? StatsKind::kMlp : StatsKind::kAttn, l);
    detail::RefittedProjection out;
    if (options.refit) {
      check_refit_statistics(s, stats->path().string() + ": layer " + std::to_string(l) + " " +
                                    (mlp ? "mlp" : "attn") + " statistics (for " + name + ")");
      RefitOptions ro = options.refit_options;
      ro.mean_compensation = compensate;
      RefitResult r = refit_columns(w, s, keep, ro);
      out.kept_columns = std::move(r.kept_columns);
      out.output_bias = std::move(r.bias);
      out.error_without_refit = r.error_without_refit;
      out.error_with_refit = r.error;
    } else {
      std::vector<Eigen::Index> cols;
      for (std::size_t c = 0; c < keep.size(); ++c)
        if (keep[c]) cols.push_back(static_cast<Eigen::Index>(c));
      out.kept_columns = w(Eigen::all, cols);
      out.output_bias = compensation_bias(w, s.mean, keep);
    }
    return out;
  };
  ApplyReport report =
      detail::write_pruned_checkpoint(ckpt, masks, provider, out_folder, options.write);
  report.warnings = std::move(warnings);
  return report;
}

}  // namespace qprune
