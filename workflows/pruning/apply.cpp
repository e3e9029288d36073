// apply_masks: a pruned checkpoint from masks. Checks the masks against the checkpoint (identity,
// feasibility, one width for every layer), plans the new config and the added bias tensors, then
// lets write_checkpoint pull each layer's sliced (and optionally re-fitted) tensors through
// CheckpointEdits::transform, so only one layer's edits are held at a time.
#include <algorithm>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "qprune/behaviour_contrast.hpp"
#include "qprune/error.hpp"
#include "qprune/interrupt.hpp"
#include "qprune/prune_pipeline.hpp"
#include "qprune/pruning_refit.hpp"
#include "workflows/pruning/pruned_writer.hpp"

namespace qprune {
namespace {

std::string layer_prefix(int layer) { return "model.layers." + std::to_string(layer) + "."; }
std::string fp8_scale_name(const std::string& weight) { return weight + "_scale_inv"; }

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

using detail::HeadPlan;

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
    case UnitKind::kExperts:
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
// (MLP: a global allocation, padded by the caller). A mixture-of-experts model's MLP entries are
// those of its dense layers (intermediate_size is theirs alone); its MoE layers get nullptr.
std::vector<const LayerMask*> layer_entries(const Masks& masks, const ModelConfig& cfg, bool mlp,
                                            bool ragged) {
  std::vector<const LayerMask*> by_layer(static_cast<std::size_t>(cfg.num_hidden_layers), nullptr);
  bool any = false;
  for (const LayerMask& e : masks.entries) {
    if (mlp ? e.unit != UnitKind::kMlp : !is_attention(e.unit)) continue;
    if (e.layer >= cfg.num_hidden_layers)
      throw InvalidArgument("masks entry for layer " + std::to_string(e.layer) +
                            ", the model has " + std::to_string(cfg.num_hidden_layers) + " layers");
    if (mlp && is_moe_layer(cfg, e.layer))
      throw InvalidArgument("masks entry layer " + std::to_string(e.layer) +
                            " mlp: that layer is a mixture-of-experts block (prune its experts "
                            "with --unit experts)");
    by_layer[static_cast<std::size_t>(e.layer)] = &e;
    any = true;
  }
  if (!any) return {};
  const char* kind = mlp ? "mlp" : "head";
  const LayerMask* first = nullptr;
  for (std::size_t l = 0; l < by_layer.size(); ++l) {
    const LayerMask* e = by_layer[l];
    if (e == nullptr && mlp && is_moe_layer(cfg, static_cast<std::int64_t>(l))) continue;
    if (e == nullptr)
      throw InvalidArgument(std::string("masks have ") + kind +
                            " entries for some layers but not layer " + std::to_string(l) +
                            "; a standard config needs the same width in every layer");
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

// The experts every MoE layer keeps (masks entries of unit experts), ids increasing: one count in
// every MoE layer (the config holds one number of experts), at least num_experts_per_tok.
std::map<int, std::vector<int>> expert_plan(const Masks& masks, const ModelConfig& cfg) {
  std::map<int, std::vector<int>> kept;
  for (const LayerMask& e : masks.entries) {
    if (e.unit != UnitKind::kExperts) continue;
    const std::string where = "masks entry layer " + std::to_string(e.layer) + " experts";
    if (e.layer < 0 || e.layer >= cfg.num_hidden_layers || !is_moe_layer(cfg, e.layer))
      throw InvalidArgument(where + ": not a MoE layer of this checkpoint");
    if (e.num_units != cfg.moe.num_experts)
      throw InvalidArgument(where + ": " + std::to_string(e.num_units) +
                            " experts, the model has " + std::to_string(cfg.moe.num_experts));
    if (!e.feasible || !e.complete())
      throw InvalidArgument(where + " is infeasible or from an interrupted solve");
    if (static_cast<std::int64_t>(e.kept.size()) < cfg.moe.num_experts_per_tok)
      throw InvalidArgument(where + " keeps " + std::to_string(e.kept.size()) +
                            " experts, fewer than num_experts_per_tok = " +
                            std::to_string(cfg.moe.num_experts_per_tok));
    if (const std::int64_t groups = cfg.moe.n_group; groups > 1) {
      // Grouped routing reshapes the experts into n_group equal groups of consecutive ids.
      const std::int64_t per = cfg.moe.num_experts / groups;
      std::vector<std::int64_t> in_group(static_cast<std::size_t>(groups), 0);
      for (const int x : e.kept) ++in_group[static_cast<std::size_t>(x / per)];
      for (std::int64_t g = 0; g < groups; ++g)
        if (in_group[static_cast<std::size_t>(g)] != in_group[0])
          throw InvalidArgument(
              where + " keeps " + std::to_string(in_group[0]) + " experts of routing group 0 and " +
              std::to_string(in_group[static_cast<std::size_t>(g)]) + " of group " +
              std::to_string(g) + "; n_group = " + std::to_string(groups) +
              " needs the same number in every group");
      if (cfg.moe.topk_group * in_group[0] < cfg.moe.num_experts_per_tok)
        throw InvalidArgument(
            where + " keeps " + std::to_string(in_group[0]) + " experts per group: topk_group = " +
            std::to_string(cfg.moe.topk_group) + " groups hold fewer than " +
            "num_experts_per_tok = " + std::to_string(cfg.moe.num_experts_per_tok));
    }
    kept[e.layer] = e.kept;
  }
  if (kept.empty()) return kept;
  for (std::int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    if (!is_moe_layer(cfg, l)) continue;
    const auto it = kept.find(static_cast<int>(l));
    if (it == kept.end())
      throw InvalidArgument("masks have experts entries for some MoE layers but not layer " +
                            std::to_string(l) +
                            "; config.json holds one number of experts for every layer");
    if (it->second.size() != kept.begin()->second.size())
      throw InvalidArgument("masks keep " + std::to_string(kept.begin()->second.size()) +
                            " experts in layer " + std::to_string(kept.begin()->first) + " and " +
                            std::to_string(it->second.size()) + " in layer " + std::to_string(l) +
                            "; config.json holds one number of experts for every layer");
  }
  return kept;
}

}  // namespace

namespace detail {

PrunedLayers::PrunedLayers(const Checkpoint& ckpt, const Masks& masks, RefitProvider refitted,
                           bool pad)
    : ckpt_(ckpt), refitted_(std::move(refitted)) {
  const ModelConfig& cfg = ckpt.config();
  if (!masks.entries.empty()) masks.check_identity(ckpt);
  mlp_ = layer_entries(masks, cfg, true, true);
  att_ = layer_entries(masks, cfg, false, true);
  compensate_ = masks.mean_compensation && !masks.entries.empty();
  if (compensate_ && !bias_compensation_supported(cfg))
    throw InvalidArgument(
        std::string("masks ask for mean compensation, which needs a bias that a ") +
        model_family_name(cfg.family) + " config cannot hold (docs/pruning_math.md)");

  ModelConfig& next = report_.config = cfg;
  const int hd = static_cast<int>(cfg.head_dim);
  const int group = static_cast<int>(cfg.num_attention_heads / cfg.num_key_value_heads);
  const auto layers = static_cast<std::size_t>(cfg.num_hidden_layers);
  widths_.assign(layers, {cfg.intermediate_size, cfg.num_attention_heads, cfg.num_key_value_heads});
  plans_.reserve(att_.size());
  for (const LayerMask* e : att_) plans_.push_back(head_plan(cfg, *e));
  auto add_new = [&](const std::string& name, const std::string& like, std::int64_t size) {
    added_[name] = {like, {size}, {}};
    report_.added_tensors.push_back(name);
  };
  // MLP width: each layer's kept count, or (padded) the widest layer's, narrower layers getting
  // zero units.
  std::int64_t mlp_width = 0;
  for (const LayerMask* e : mlp_) {
    if (e == nullptr) continue;  // a MoE layer
    const auto k = static_cast<std::int64_t>(e->kept.size());
    report_.padded = report_.padded || (pad && mlp_width != 0 && k != mlp_width);
    mlp_width = std::max(mlp_width, k);
  }
  for (std::size_t l = 0; l < mlp_.size(); ++l)
    if (mlp_[l] != nullptr)
      widths_[l].mlp = pad ? mlp_width : static_cast<std::int64_t>(mlp_[l]->kept.size());
  if (!mlp_.empty()) {
    next.intermediate_size = mlp_width;
    if (compensate_ && !cfg.mlp_bias) {
      next.mlp_bias = true;
      for (std::size_t l = 0; l < layers; ++l) {
        if (mlp_[l] == nullptr) continue;
        const std::string p = layer_prefix(static_cast<int>(l)) + "mlp.";
        add_new(p + "gate_proj.bias", p + "gate_proj.weight", widths_[l].mlp);
        add_new(p + "up_proj.bias", p + "up_proj.weight", widths_[l].mlp);
        add_new(p + "down_proj.bias", p + "down_proj.weight", cfg.hidden_size);
      }
    }
  }
  if (!att_.empty()) {
    // Padded, the widest layer sets the written shape: its KV heads and its query heads per KV
    // head; narrower layers get zero slots (a zero o_proj column block adds nothing to the output).
    // Unpadded, every layer has its own.
    std::size_t out_kv = 0, per_group = 0;
    for (const HeadPlan& pl : plans_) {
      out_kv = std::max(out_kv, pl.kv.size());
      per_group = std::max(per_group, pl.heads.size() / pl.kv.size());
    }
    for (std::size_t l = 0; l < plans_.size(); ++l) {
      HeadPlan& pl = plans_[l];
      const std::size_t kv_slots = pad ? out_kv : pl.kv.size();
      const std::size_t per = pad ? per_group : pl.heads.size() / pl.kv.size();
      pl.kv_slot.assign(kv_slots, -1);
      pl.head_slot.assign(kv_slots * per, -1);
      for (std::size_t sl = 0; sl < pl.kv.size(); ++sl) {
        pl.kv_slot[sl] = pl.kv[sl];
        std::size_t j = 0;
        for (const int h : pl.heads)
          if (h / group == pl.kv[sl]) pl.head_slot[sl * per + j++] = h;
      }
      report_.padded = report_.padded || pl.head_slot.size() > pl.heads.size();
      widths_[l].heads = static_cast<std::int64_t>(pl.head_slot.size());
      widths_[l].kv_heads = static_cast<std::int64_t>(pl.kv_slot.size());
    }
    next.num_attention_heads = static_cast<std::int64_t>(out_kv * per_group);
    next.num_key_value_heads = static_cast<std::int64_t>(out_kv);
    if (compensate_ && !cfg.o_proj_bias) {
      next.attention_bias = next.o_proj_bias = true;
      for (std::size_t l = 0; l < layers; ++l) {
        const std::string p = layer_prefix(static_cast<int>(l)) + "self_attn.";
        add_new(p + "q_proj.bias", p + "q_proj.weight", widths_[l].heads * hd);
        add_new(p + "k_proj.bias", p + "k_proj.weight", widths_[l].kv_heads * hd);
        add_new(p + "v_proj.bias", p + "v_proj.weight", widths_[l].kv_heads * hd);
        add_new(p + "o_proj.bias", p + "o_proj.weight", cfg.hidden_size);
      }
    }
  }
  // Zeros stored by the head padding: per padded query head its q rows and o_proj columns, per
  // padded KV head its k and v rows, and their bias entries where the output has biases.
  for (std::size_t i = 0; i < att_.size(); ++i) {
    const HeadPlan& pl = plans_[i];
    const std::string a = layer_prefix(att_[i]->layer) + "self_attn.";
    const auto biased = [&](const char* t) {
      return ckpt.contains(a + t) || added_.count(a + t) != 0 ? 1 : 0;
    };
    const auto pad_heads = static_cast<std::int64_t>(pl.head_slot.size() - pl.heads.size());
    const auto pad_kv = static_cast<std::int64_t>(pl.kv_slot.size() - pl.kv.size());
    report_.padding_parameters +=
        pad_heads * hd * (2 * cfg.hidden_size + biased("q_proj.bias")) +
        pad_kv * hd * (2 * cfg.hidden_size + biased("k_proj.bias") + biased("v_proj.bias"));
  }
  // Zeros stored by the MLP padding: per missing unit, a down_proj column and the gate/up rows (and
  // their bias entries when the output has those biases).
  for (std::size_t l = 0; l < mlp_.size(); ++l) {
    if (mlp_[l] == nullptr) continue;
    const std::string m = layer_prefix(mlp_[l]->layer) + "mlp.";
    const bool unit_bias =
        ckpt.contains(m + "gate_proj.bias") || added_.count(m + "gate_proj.bias");
    report_.padding_parameters +=
        (widths_[l].mlp - static_cast<std::int64_t>(mlp_[l]->kept.size())) *
        (3 * cfg.hidden_size + (unit_bias ? 2 : 0));
  }
}

std::vector<std::string> PrunedLayers::rewritten_weights() const {
  std::vector<std::string> out;
  for (const LayerMask* e : mlp_)
    if (e != nullptr)
      for (const char* w : {"gate_proj.weight", "up_proj.weight", "down_proj.weight"})
        out.push_back(layer_prefix(e->layer) + "mlp." + w);
  for (const LayerMask* e : att_)
    for (const char* w : {"q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight"})
      out.push_back(layer_prefix(e->layer) + "self_attn." + w);
  return out;
}

std::vector<AppliedLayer> PrunedLayers::applied_layers() const {
  std::vector<AppliedLayer> out;
  for (const auto& [key, a] : applied_) out.push_back(a);
  return out;
}

void PrunedLayers::compute_layer(int l) {
  cache_.clear();
  cached_layer_ = l;
  const ModelConfig& cfg = ckpt_.config();
  const int hd = static_cast<int>(cfg.head_dim);
  const std::string p = layer_prefix(l);
  auto has = [&](const std::string& n) { return ckpt_.contains(n); };
  if (!mlp_.empty() && mlp_[static_cast<std::size_t>(l)] != nullptr) {
    const LayerMask& e = *mlp_[static_cast<std::size_t>(l)];
    const std::string m = p + "mlp.";
    const auto width = static_cast<Eigen::Index>(widths_[static_cast<std::size_t>(l)].mlp);
    // Each read converts a whole projection (seconds at 7B size): check Ctrl-C between them.
    throw_if_interrupted("slicing the checkpoint");
    cache_[m + "gate_proj.weight"] =
        pad_rows(take_rows(ckpt_.read_matrix(m + "gate_proj.weight"), e.kept, 1), width);
    throw_if_interrupted("slicing the checkpoint");
    cache_[m + "up_proj.weight"] =
        pad_rows(take_rows(ckpt_.read_matrix(m + "up_proj.weight"), e.kept, 1), width);
    throw_if_interrupted("slicing the checkpoint");
    const Eigen::MatrixXd down = ckpt_.read_matrix(m + "down_proj.weight");
    const auto k = static_cast<Eigen::Index>(e.kept.size());
    for (const char* b : {"gate_proj.bias", "up_proj.bias"})
      cache_[m + b] = has(m + b) ? pad_rows(take_rows(ckpt_.read_matrix(m + b), e.kept, 1), width)
                                 : Eigen::MatrixXd::Zero(width, 1);
    Eigen::VectorXd bias = has(m + "down_proj.bias") ? ckpt_.read_vector(m + "down_proj.bias")
                                                     : Eigen::VectorXd::Zero(down.rows());
    AppliedLayer a{l, e.unit, static_cast<int>(k), compensate_, 0.0, 0.0};
    if (std::optional<RefittedProjection> r = refitted_(l, true)) {
      cache_[m + "down_proj.weight"] = pad_cols(
          r->kept_columns.size() != 0 ? std::move(r->kept_columns) : take_cols(down, e.kept, 1),
          width);
      if (r->output_bias.size() != 0) bias += r->output_bias;
      a.error_without_refit = r->error_without_refit;
      a.error_with_refit = r->error_with_refit;
    } else {
      cache_[m + "down_proj.weight"] = pad_cols(take_cols(down, e.kept, 1), width);
    }
    cache_[m + "down_proj.bias"] = bias;
    applied_[{l, 0}] = a;
  }
  if (!att_.empty()) {
    const LayerMask& e = *att_[static_cast<std::size_t>(l)];
    const HeadPlan& plan = plans_[static_cast<std::size_t>(l)];
    const std::string s = p + "self_attn.";
    throw_if_interrupted("slicing the checkpoint");
    cache_[s + "q_proj.weight"] =
        slot_rows(ckpt_.read_matrix(s + "q_proj.weight"), plan.head_slot, hd);
    for (const char* w : {"k_proj.weight", "v_proj.weight"}) {
      throw_if_interrupted("slicing the checkpoint");
      cache_[s + w] = slot_rows(ckpt_.read_matrix(s + w), plan.kv_slot, hd);
    }
    const std::pair<const char*, const std::vector<int>*> biases[] = {
        {"q_proj.bias", &plan.head_slot},
        {"k_proj.bias", &plan.kv_slot},
        {"v_proj.bias", &plan.kv_slot}};
    for (const auto& [b, slots] : biases)
      cache_[s + b] = has(s + b)
                          ? slot_rows(ckpt_.read_matrix(s + b), *slots, hd)
                          : Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(slots->size()) * hd, 1);
    throw_if_interrupted("slicing the checkpoint");
    const Eigen::MatrixXd wo = ckpt_.read_matrix(s + "o_proj.weight");
    Eigen::VectorXd bias = has(s + "o_proj.bias") ? ckpt_.read_vector(s + "o_proj.bias")
                                                  : Eigen::VectorXd::Zero(wo.rows());
    AppliedLayer a{l, e.unit, static_cast<int>(e.kept.size()), compensate_, 0.0, 0.0};
    if (std::optional<RefittedProjection> r = refitted_(l, false)) {
      // The refitted columns hold the kept heads in increasing order; put each in its slot.
      std::vector<int> index_slot(plan.head_slot.size(), -1);
      for (std::size_t sl = 0; sl < plan.head_slot.size(); ++sl)
        if (plan.head_slot[sl] >= 0)
          index_slot[sl] = static_cast<int>(
              std::lower_bound(plan.heads.begin(), plan.heads.end(), plan.head_slot[sl]) -
              plan.heads.begin());
      cache_[s + "o_proj.weight"] = r->kept_columns.size() != 0
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
        cache_[s + "v_proj.bias"].col(0).head(kept_rows) += r->value_bias;
      }
      a.error_without_refit = r->error_without_refit;
      a.error_with_refit = r->error_with_refit;
    } else {
      cache_[s + "o_proj.weight"] = slot_cols(wo, plan.head_slot, hd);
    }
    cache_[s + "o_proj.bias"] = bias;
    applied_[{l, 1}] = a;
  }
}

std::optional<Eigen::MatrixXd> PrunedLayers::tensor(const std::string& name) {
  // Checkpoint::open refused any `model.layers.` name without a layer below num_hidden_layers
  // (+ num_nextn_predict_layers: DeepSeek-V3's MTP layers, never sliced).
  const std::optional<std::int64_t> layer = tensor_layer_index(name);
  if (!layer || *layer >= ckpt_.config().num_hidden_layers || (mlp_.empty() && att_.empty()))
    return std::nullopt;
  const int l = static_cast<int>(*layer);
  if (l != cached_layer_) compute_layer(l);
  const auto it = cache_.find(name);
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

ApplyReport write_pruned_checkpoint(const Checkpoint& ckpt, const Masks& masks,
                                    const RefitProvider& refitted,
                                    const std::filesystem::path& out_folder,
                                    const CheckpointWriteOptions& write) {
  if (masks.entries.empty()) throw InvalidArgument("masks have no entries");
  PrunedLayers pruned(ckpt, masks, refitted, true);
  ApplyReport report = pruned.report();
  CheckpointEdits edits;
  edits.add = pruned.added();
  // Experts: the removed ones' tensors go, the kept ones are renumbered 0.. in order, and the
  // router keeps their rows and DeepSeek-V3's correction bias their entries (read when written,
  // one layer at a time).
  const ModelConfig& cfg = ckpt.config();
  const std::map<int, std::vector<int>> experts = expert_plan(masks, cfg);
  std::map<std::string, std::vector<int>> routers;  // router tensor -> kept rows
  if (!experts.empty()) {
    const MoeTensorNames n = moe_tensor_names(cfg);
    for (const auto& [layer, kept] : experts) {
      const std::string p = layer_prefix(layer);
      std::vector<char> keep(static_cast<std::size_t>(cfg.moe.num_experts), 0);
      // Each projection with its FP8 scale, when it has one: bytes copied, so FP8 stays FP8.
      auto with_scale = [&](std::int64_t e, const std::string& proj) {
        std::vector<std::string> names = {p + n.expert(e, proj)};
        if (ckpt.contains(fp8_scale_name(names[0]))) names.push_back(fp8_scale_name(names[0]));
        return names;
      };
      for (std::size_t j = 0; j < kept.size(); ++j) {
        keep[static_cast<std::size_t>(kept[j])] = 1;
        if (kept[j] != static_cast<int>(j))
          for (const std::string& proj : {n.gate, n.up, n.down}) {
            const std::vector<std::string> from = with_scale(kept[j], proj);
            const std::string to = p + n.expert(static_cast<int>(j), proj);
            edits.rename[from[0]] = to;
            if (from.size() == 2) edits.rename[from[1]] = fp8_scale_name(to);
          }
      }
      for (std::int64_t e = 0; e < cfg.moe.num_experts; ++e)
        if (!keep[static_cast<std::size_t>(e)])
          for (const std::string& proj : {n.gate, n.up, n.down})
            for (const std::string& name : with_scale(e, proj)) edits.remove.insert(name);
      routers[p + n.router] = kept;
      if (!n.router_bias.empty()) routers[p + n.router_bias] = kept;  // its entries likewise
      report.layers.push_back({layer, UnitKind::kExperts, static_cast<int>(kept.size())});
    }
    report.config.moe.num_experts = static_cast<std::int64_t>(experts.begin()->second.size());
    // DeepSeek-V3's MTP layers hold a MoE block of the old expert count, which the one global
    // n_routed_experts no longer describes: they go (Transformers does not run them anyway).
    if (const std::int64_t mtp = cfg.num_nextn_predict_layers;
        mtp > 0 && report.config.moe.num_experts != cfg.moe.num_experts) {
      for (const std::string& name : ckpt.tensor_names())
        if (const std::optional<std::int64_t> l = tensor_layer_index(name);
            l && *l >= cfg.num_hidden_layers)
          edits.remove.insert(name);
      report.config.num_nextn_predict_layers = 0;
      report.mtp_note = "dropped " + std::to_string(mtp) + " MTP layer" + (mtp > 1 ? "s" : "") +
                        " (model.layers." + std::to_string(cfg.num_hidden_layers) +
                        (mtp > 1 ? "-" + std::to_string(cfg.num_hidden_layers + mtp - 1) : "") +
                        ".*) and set num_nextn_predict_layers to 0: n_routed_experts is now " +
                        std::to_string(report.config.moe.num_experts) +
                        " for every layer, and the MTP layer's MoE block still has " +
                        std::to_string(cfg.moe.num_experts) + " experts";
    }
  }
  // Block-wise FP8: a sliced weight no longer fills its scale blocks (rows and columns move
  // between blocks), so it is written dequantised as BF16, its scale dropped, and its module listed
  // in quantization_config.modules_to_not_convert so loaders keep it a plain Linear.
  std::set<std::string> dequantised;
  for (const std::string& w : pruned.rewritten_weights()) {
    if (!ckpt.contains(w) || !ckpt.is_fp8(w)) continue;
    edits.dtype[w] = Dtype::kBF16;
    edits.remove.insert(fp8_scale_name(w));
    dequantised.insert(w.substr(0, w.size() - std::string(".weight").size()));
  }
  for (const auto& [name, added] : edits.add)
    if (ckpt.is_fp8(added.like)) edits.dtype[name] = Dtype::kBF16;
  report.dequantised_modules.assign(dequantised.begin(), dequantised.end());
  edits.transform = [&](const std::string& name) -> std::optional<Eigen::MatrixXd> {
    if (const auto r = routers.find(name); r != routers.end())
      return take_rows(ckpt.read_matrix(name), r->second, 1);
    return pruned.tensor(name);
  };
  // config.json: the new widths, and head_dim spelled out (it no longer follows from
  // hidden_size / num_attention_heads once heads are removed).
  nlohmann::json j = nlohmann::json::parse(report.config.to_json());  // sorted keys, as HF writes
  if (pruned.prunes_heads()) j["head_dim"] = ckpt.config().head_dim;
  if (!dequantised.empty()) {
    // Transformers matches these against module names (model.layers.0.mlp.gate_proj, no
    // ".weight"): a prefix or substring match in the versions seen, so full names are exact.
    nlohmann::json& q = j["quantization_config"];
    std::set<std::string> all = dequantised;
    if (const auto it = q.find("modules_to_not_convert"); it != q.end() && it->is_array())
      for (const nlohmann::json& m : *it)
        if (m.is_string()) all.insert(m.get<std::string>());
    q["modules_to_not_convert"] = std::vector<std::string>(all.begin(), all.end());
  }
  edits.config_json = j.dump(2) + "\n";
  // Counted in the new folder before it moves into place: after the move another apply into the
  // same -o may already have replaced it.
  CheckpointWriteOptions write_options = write;
  write_options.before_commit = [&](const std::filesystem::path& staged) {
    report.stored_parameters = Checkpoint::open(staged).num_parameters();
  };
  write_checkpoint(ckpt, out_folder, edits, write_options);
  for (const AppliedLayer& a : pruned.applied_layers()) report.layers.push_back(a);
  return report;
}

}  // namespace detail

namespace detail {

RefitProvider refit_provider(const Checkpoint& ckpt, const Masks& masks,
                             const CalibrationStatsFile* stats, const ApplyOptions& options,
                             std::vector<std::string>& warnings) {
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
  if (options.refit) {
    for (const bool mlp : {true, false}) {
      const LayerMask* widest = nullptr;
      std::int64_t kept = 0;
      for (const LayerMask& e : masks.entries) {
        if (mlp ? e.unit != UnitKind::kMlp : !is_attention(e.unit)) continue;
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
  // Protect-mode masks: the refit fits B and the protected set A, weighted as the masks' objective
  // weighed them (without it the refit would undo, on A, what the masks chose to keep).
  std::shared_ptr<const CalibrationStatsFile> protect;
  if (options.refit && masks.behaviour.mode == "protect") {
    const std::filesystem::path path = options.protected_statistics.empty()
                                           ? std::filesystem::path(masks.behaviour.statistics)
                                           : options.protected_statistics;
    protect = std::make_shared<const CalibrationStatsFile>(CalibrationStatsFile::open(path));
    check_contrast_files(ckpt, *stats, *protect);
  }
  // The provider outlives this call: the checkpoint, masks and statistics by reference (the caller
  // keeps them), everything else by value.
  RefitProvider provider = [&ckpt, &masks, stats, protect, options, hd, compensate](
                               int l, bool mlp) -> std::optional<RefittedProjection> {
    if (!options.refit && !compensate) return std::nullopt;
    const LayerMask* e = masks.find(l, mlp);
    const std::string name =
        layer_prefix(l) + (mlp ? "mlp.down_proj.weight" : "self_attn.o_proj.weight");
    const Eigen::MatrixXd w = ckpt.read_matrix(name);
    Assignment keep(static_cast<std::size_t>(w.cols()), 0);
    if (mlp) {
      for (const int i : e->kept) keep[static_cast<std::size_t>(i)] = 1;
    } else {
      for (const int h : head_plan(ckpt.config(), *e).heads)
        for (int c = 0; c < hd; ++c)
          keep[static_cast<std::size_t>(h) * static_cast<std::size_t>(hd) +
               static_cast<std::size_t>(c)] = 1;
    }
    const StatsKind kind = mlp ? StatsKind::kMlp : StatsKind::kAttn;
    ActivationStats s = stats->read(kind, l);
    if (protect != nullptr)
      s = protected_refit_statistics(w, s, protect->read(kind, l), masks.behaviour.weight,
                                     compensate,
                                     stats->path().string() + " + " + protect->path().string() +
                                         ": layer " + std::to_string(l) + " " + name);
    RefittedProjection out;
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
  return provider;
}

}  // namespace detail

ApplyReport apply_masks(const Checkpoint& ckpt, const Masks& masks,
                        const CalibrationStatsFile* stats, const std::filesystem::path& out_folder,
                        const ApplyOptions& options) {
  std::vector<std::string> warnings;
  const detail::RefitProvider provider =
      detail::refit_provider(ckpt, masks, stats, options, warnings);
  ApplyReport report =
      detail::write_pruned_checkpoint(ckpt, masks, provider, out_folder, options.write);
  report.warnings = std::move(warnings);
  return report;
}

}  // namespace qprune
