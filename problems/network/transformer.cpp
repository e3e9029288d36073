// The F32 forward pass of Llama / Qwen2 / Mistral and Qwen2-MoE / Mixtral / DeepSeek-V3
// checkpoints (see include/qprune/transformer.hpp).
// Hidden states are kept as one matrix hidden x (all tokens of all sequences side by side), so the
// projections are large GEMMs (in fixed column panels, parallel through OpenMP); attention runs per
// (sequence, head) pair in an OpenMP loop. The arithmetic mirrors the Transformers implementation
// (F32 RMSNorm with the weight applied after the normalisation, rotate-half rotary embeddings with
// F32 angles, max-subtracted softmax) so that logits agree with torch to rounding.
#include "qprune/transformer.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numbers>
#include <string>

#include "core/memory_check.hpp"
#include "core/parallel_for.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"
#include "qprune/interrupt.hpp"

namespace qprune {
namespace {

using Eigen::Index;
using Eigen::MatrixXf;
using Eigen::VectorXf;

std::string layer_prefix(int layer) { return "model.layers." + std::to_string(layer) + "."; }

// Finite weights can still overflow F32 (|x| > 3.4e38) and turn into Inf, then NaN; every later
// number (log-probabilities, perplexity, calibration Grams) would be NaN without a word. So each
// sublayer's output is checked where it is made, and the first non-finite one is reported with the
// tensors that made it: the checkpoint is bad input (exit 2), not a result.
void check_finite(const MatrixXf& m, const Checkpoint& ckpt, const std::string& what,
                  const std::string& tensors) {
  if (m.allFinite()) return;
  throw InvalidArgument(ckpt.folder().string() + ": the forward pass gives non-finite values " +
                        "(Inf/NaN) in " + what + "; the weights " + tensors +
                        " are too large for F32 arithmetic, or the input before them was");
}

// A tensor as an F32 column vector (rank 1).
VectorXf read_vec(const Checkpoint& ckpt, const std::string& name) {
  return ckpt.read_matrix_f32(name).col(0);
}
VectorXf read_bias(const Checkpoint& ckpt, const std::string& name) {
  return ckpt.contains(name) ? read_vec(ckpt, name) : VectorXf();
}
// A linear layer `name`.weight and its optional `name`.bias.
void read_linear(const Checkpoint& ckpt, const std::string& name, MatrixXf& weight,
                 VectorXf& bias) {
  weight = ckpt.read_matrix_f32(name + ".weight");
  bias = read_bias(ckpt, name + ".bias");
}

// Rotary embedding of one head block (rows [row0, row0 + head_dim)) of column t at position pos:
// x' = x cos + rotate_half(x) sin, rotate_half(x) = [-x2, x1] for x = [x1, x2].
void apply_rope(MatrixXf& m, Index row0, Index t, const std::vector<float>& cos_row,
                const std::vector<float>& sin_row, Index half) {
  for (Index i = 0; i < half; ++i) {
    const float x1 = m(row0 + i, t);
    const float x2 = m(row0 + i + half, t);
    const auto ui = static_cast<std::size_t>(i);
    m(row0 + i, t) = x1 * cos_row[ui] - x2 * sin_row[ui];
    m(row0 + i + half, t) = x2 * cos_row[ui] + x1 * sin_row[ui];
  }
}

// The same rotation with DeepSeek's interleaved pairs (x[2i], x[2i+1]) (inference/model.py's
// apply_rotary_emb: consecutive pairs as complex numbers).
void apply_rope_interleaved(MatrixXf& m, Index row0, Index t, const std::vector<float>& cos_row,
                            const std::vector<float>& sin_row, Index half) {
  for (Index i = 0; i < half; ++i) {
    const float x1 = m(row0 + 2 * i, t);
    const float x2 = m(row0 + 2 * i + 1, t);
    const auto ui = static_cast<std::size_t>(i);
    m(row0 + 2 * i, t) = x1 * cos_row[ui] - x2 * sin_row[ui];
    m(row0 + 2 * i + 1, t) = x1 * sin_row[ui] + x2 * cos_row[ui];
  }
}

// Causal softmax over keys of scores(j, i) = key j . query i (scaled): column i's probabilities
// over keys 0..i, max-subtracted; the entries above the diagonal stay 0.
MatrixXf causal_softmax(const MatrixXf& scores) {
  const Index len = scores.cols();
  MatrixXf probs = MatrixXf::Zero(len, len);
  for (Index i = 0; i < len; ++i) {
    const float mx = scores.col(i).head(i + 1).maxCoeff();
    float sum = 0.0f;
    for (Index j = 0; j <= i; ++j) {
      const float e = std::exp(scores(j, i) - mx);
      probs(j, i) = e;
      sum += e;
    }
    probs.col(i).head(i + 1) /= sum;
  }
  return probs;
}

}  // namespace

DecoderLayerWeights DecoderLayerWeights::read(const Checkpoint& ckpt, int layer) {
  const ModelConfig& c = ckpt.config();
  const std::string p = layer_prefix(layer);
  DecoderLayerWeights w;
  w.input_norm = read_vec(ckpt, p + "input_layernorm.weight");
  w.post_attention_norm = read_vec(ckpt, p + "post_attention_layernorm.weight");
  const std::string a = p + "self_attn.";
  if (c.mla.kv_lora_rank > 0) {
    MlaWeights& m = w.mla.emplace();
    if (c.mla.q_lora_rank > 0) {
      m.q_a = ckpt.read_matrix_f32(a + "q_a_proj.weight");
      m.q_a_norm = read_vec(ckpt, a + "q_a_layernorm.weight");
      m.q_b = ckpt.read_matrix_f32(a + "q_b_proj.weight");
    } else {
      m.q_b = ckpt.read_matrix_f32(a + "q_proj.weight");
    }
    m.kv_a = ckpt.read_matrix_f32(a + "kv_a_proj_with_mqa.weight");
    m.kv_a_norm = read_vec(ckpt, a + "kv_a_layernorm.weight");
    m.kv_b = ckpt.read_matrix_f32(a + "kv_b_proj.weight");
    m.nope_dim = static_cast<int>(c.mla.qk_nope_head_dim);
    m.rope_dim = static_cast<int>(c.mla.qk_rope_head_dim);
    m.v_dim = static_cast<int>(c.mla.v_head_dim);
    m.rope_interleave = c.mla.rope_interleave;
    m.eps = c.rms_norm_eps;
  } else {
    read_linear(ckpt, a + "q_proj", w.q, w.q_bias);
    read_linear(ckpt, a + "k_proj", w.k, w.k_bias);
    read_linear(ckpt, a + "v_proj", w.v, w.v_bias);
  }
  read_linear(ckpt, a + "o_proj", w.o, w.o_bias);
  w.num_heads = static_cast<int>(c.num_attention_heads);
  w.num_kv_heads = static_cast<int>(c.num_key_value_heads);
  w.head_dim = static_cast<int>(c.head_dim);
  if (is_moe_layer(c, layer)) {
    const MoeTensorNames n = moe_tensor_names(c);
    MoeBlockWeights& b = w.moe.emplace();
    b.router = ckpt.read_matrix_f32(p + n.router);
    b.num_experts = static_cast<int>(c.moe.num_experts);
    b.read_expert = [&ckpt, p, n](int e) {
      const auto id = static_cast<std::int64_t>(e);
      ExpertWeights x;
      x.gate = ckpt.read_matrix_f32(p + n.expert(id, n.gate));
      x.up = ckpt.read_matrix_f32(p + n.expert(id, n.up));
      x.down = ckpt.read_matrix_f32(p + n.expert(id, n.down));
      return x;
    };
    if (c.moe.shared_expert_intermediate_size > 0) {
      b.shared.gate = ckpt.read_matrix_f32(p + n.shared_prefix + "gate_proj.weight");
      b.shared.up = ckpt.read_matrix_f32(p + n.shared_prefix + "up_proj.weight");
      b.shared.down = ckpt.read_matrix_f32(p + n.shared_prefix + "down_proj.weight");
      if (!n.shared_gate.empty()) b.shared_gate = ckpt.read_matrix_f32(p + n.shared_gate).row(0);
    }
    b.top_k = static_cast<int>(c.moe.num_experts_per_tok);
    b.norm_topk_prob = c.moe.norm_topk_prob;
    b.sigmoid_scores = c.moe.sigmoid_scores;
    if (c.moe.router_bias) b.score_bias = read_vec(ckpt, p + n.router_bias);
    b.num_groups = static_cast<int>(c.moe.n_group);
    b.topk_groups = static_cast<int>(c.moe.topk_group);
    b.routed_scaling_factor = static_cast<float>(c.moe.routed_scaling_factor);
    return w;
  }
  const std::string m = p + "mlp.";
  read_linear(ckpt, m + "gate_proj", w.gate, w.gate_bias);
  read_linear(ckpt, m + "up_proj", w.up, w.up_bias);
  read_linear(ckpt, m + "down_proj", w.down, w.down_bias);
  return w;
}

ExpertWeights MoeBlockWeights::expert(int e) const {
  if (e < 0 || e >= num_experts || !read_expert)
    throw InvalidArgument("MoeBlockWeights::expert: expert " + std::to_string(e) +
                          " is not one of the block's " + std::to_string(num_experts) +
                          (read_expert ? "" : " (no read_expert set)"));
  return read_expert(e);
}

void MoeBlockWeights::hold_experts(std::vector<ExpertWeights> experts) {
  num_experts = static_cast<int>(experts.size());
  auto held = std::make_shared<const std::vector<ExpertWeights>>(std::move(experts));
  read_expert = [held](int e) { return (*held)[static_cast<std::size_t>(e)]; };
}

namespace {

// The rotary frequencies of a config and yarn's two magnitudes (RopeScaling).
struct RopeTables {
  std::vector<float> inv_freq;        // d / 2 entries
  double cos_sin_scale = 1.0;         // multiplies cos and sin
  double softmax_scale_factor = 1.0;  // multiplies the attention's 1 / sqrt(head dim)
};

// yarn_get_mscale of DeepSeek's modeling_deepseek.py (and Transformers' get_mscale).
double yarn_mscale(double factor, double mscale) {
  return factor <= 1.0 ? 1.0 : 0.1 * mscale * std::log(factor) + 1.0;
}

// Each reference computes its tables in float32 (torch's default dtype) from Python doubles; the
// F32 operations below follow theirs one by one (the scalars rounded to F32 where torch rounds
// them), so the tables agree with torch's to rounding. The tests compare with a float64
// reference at 1e-5 on the logits, far above the F32 rounding of angles below ~10 rad.
RopeTables rope_tables(const ModelConfig& c, Index d) {
  const RopeScaling& rs = c.rope_scaling;
  if (!rs.invalid.empty()) throw InvalidArgument("rope_scaling: " + rs.invalid);
  if (rs.type == RopeScaling::Type::kUnsupported)
    throw InvalidArgument("rope_scaling type '" + rs.type_name + "' is not implemented");
  const Index half = d / 2;
  const auto n = static_cast<std::size_t>(half);
  RopeTables t;
  t.inv_freq.resize(n);
  // Plain: inv_freq_i = 1 / theta^(2i / d) (Transformers' _compute_default_rope_parameters; the
  // freq_extra of DeepSeek's yarn).
  std::vector<float> base(n);
  for (std::size_t i = 0; i < n; ++i)
    base[i] = 1.0f / std::pow(static_cast<float>(c.rope_theta),
                              static_cast<float>(2 * i) / static_cast<float>(d));
  const auto factor = static_cast<float>(rs.factor);
  switch (rs.type) {
    case RopeScaling::Type::kNone:
    case RopeScaling::Type::kUnsupported:
      t.inv_freq = base;
      break;
    case RopeScaling::Type::kLlama3: {
      // Transformers' _compute_llama3_parameters (the reference for Llama 3.x; Meta's own
      // apply_scaling computes the same in its own order).
      const auto old_len = static_cast<float>(rs.original_max_position_embeddings);
      const auto low_wavelen = static_cast<float>(
          static_cast<double>(rs.original_max_position_embeddings) / rs.low_freq_factor);
      const auto high_wavelen = static_cast<float>(
          static_cast<double>(rs.original_max_position_embeddings) / rs.high_freq_factor);
      const auto low = static_cast<float>(rs.low_freq_factor);
      const auto span = static_cast<float>(rs.high_freq_factor - rs.low_freq_factor);
      const auto two_pi = static_cast<float>(2.0 * std::numbers::pi);
      for (std::size_t i = 0; i < n; ++i) {
        const float wavelen = two_pi / base[i];
        const float scaled = wavelen > low_wavelen ? base[i] / factor : base[i];
        const float smooth = (old_len / wavelen - low) / span;
        const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
        t.inv_freq[i] = medium ? (1.0f - smooth) * scaled / factor + smooth * scaled : scaled;
      }
      break;
    }
    case RopeScaling::Type::kYarn: {
      // DeepSeek's own modeling_deepseek.py (DeepseekV3YarnRotaryEmbedding._set_cos_sin_cache,
      // yarn_find_correction_range, yarn_linear_ramp_mask, yarn_get_mscale; DeepseekV3Attention
      // for the softmax scale), the code DeepSeek-V3/R1 were released with. Transformers'
      // _compute_yarn_parameters differs: its cos/sin factor is get_mscale(factor) when mscale or
      // mscale_all_dim is missing (DeepSeek: m(factor, mscale) / m(factor, mscale_all_dim) with
      // defaults 1 and 0), it may skip the floor/ceil of the correction range (`truncate`), and
      // recent versions take factor from max_position_embeddings /
      // original_max_position_embeddings. For DeepSeek-V3's released config (mscale =
      // mscale_all_dim = 1, factor 40 = 163840 / 4096) the two agree.
      const double two_pi = 2.0 * std::numbers::pi;
      const double dd = static_cast<double>(d);
      const double orig = static_cast<double>(rs.original_max_position_embeddings);
      auto correction_dim = [&](double rotations) {
        return dd * std::log(orig / (rotations * two_pi)) / (2.0 * std::log(c.rope_theta));
      };
      const double low = std::max(std::floor(correction_dim(rs.beta_fast)), 0.0);
      double high = std::min(std::ceil(correction_dim(rs.beta_slow)), dd - 1.0);
      if (low == high) high += 0.001;  // yarn_linear_ramp_mask's guard against 0 / 0
      const auto low_f = static_cast<float>(low);
      const auto span_f = static_cast<float>(high - low);
      for (std::size_t i = 0; i < n; ++i) {
        const float extra = base[i];
        const float inter =
            1.0f / (factor * std::pow(static_cast<float>(c.rope_theta),
                                      static_cast<float>(2 * i) / static_cast<float>(d)));
        const float ramp = std::clamp((static_cast<float>(i) - low_f) / span_f, 0.0f, 1.0f);
        const float mask = 1.0f - ramp;  // inv_freq_mask: 1 keeps the unscaled frequency
        t.inv_freq[i] = inter * (1.0f - mask) + extra * mask;
      }
      t.cos_sin_scale =
          yarn_mscale(rs.factor, rs.mscale) / yarn_mscale(rs.factor, rs.mscale_all_dim);
      if (rs.mscale_all_dim != 0.0) {
        const double m = yarn_mscale(rs.factor, rs.mscale_all_dim);
        t.softmax_scale_factor = m * m;
      }
      break;
    }
  }
  return t;
}

}  // namespace

TokenBatch::TokenBatch(const std::vector<std::vector<std::int32_t>>& sequences,
                       const ModelConfig& c)
    : sequences_(&sequences), vocab_size_(c.vocab_size), offsets_(sequences.size() + 1, 0) {
  Index max_len = 0;
  for (std::size_t s = 0; s < sequences.size(); ++s) {
    offsets_[s + 1] = offsets_[s] + static_cast<Index>(sequences[s].size());
    max_len = std::max(max_len, static_cast<Index>(sequences[s].size()));
  }
  // Rotary tables per position, in F32 as Transformers builds them (inv_freq, then pos * inv_freq).
  const Index hd = c.mla.kv_lora_rank > 0 ? c.mla.qk_rope_head_dim : c.head_dim;
  const Index half = hd / 2;
  const RopeTables rope = rope_tables(c, hd);
  const std::vector<float>& inv_freq = rope.inv_freq;
  const auto cos_sin_scale = static_cast<float>(rope.cos_sin_scale);
  softmax_scale_factor_ = rope.softmax_scale_factor;
  cos_.resize(static_cast<std::size_t>(max_len));
  sin_.resize(static_cast<std::size_t>(max_len));
  for (Index p = 0; p < max_len; ++p) {
    auto& cr = cos_[static_cast<std::size_t>(p)];
    auto& sr = sin_[static_cast<std::size_t>(p)];
    cr.resize(static_cast<std::size_t>(half));
    sr.resize(static_cast<std::size_t>(half));
    for (Index i = 0; i < half; ++i) {
      const float angle = static_cast<float>(p) * inv_freq[static_cast<std::size_t>(i)];
      cr[static_cast<std::size_t>(i)] = std::cos(angle);
      sr[static_cast<std::size_t>(i)] = std::sin(angle);
      if (cos_sin_scale != 1.0f) {  // yarn's mscale ratio, an F32 product as DeepSeek's cache
        cr[static_cast<std::size_t>(i)] *= cos_sin_scale;
        sr[static_cast<std::size_t>(i)] *= cos_sin_scale;
      }
    }
  }
}

MatrixXf TokenBatch::embed(const Checkpoint& ckpt) const {
  const MatrixXf table = ckpt.read_matrix_f32("model.embed_tokens.weight");  // vocab x hidden
  MatrixXf x(table.cols(), num_tokens());
  for (std::size_t s = 0; s < sequences_->size(); ++s) {
    const std::vector<std::int32_t>& seq = (*sequences_)[s];
    for (std::size_t t = 0; t < seq.size(); ++t) {
      const std::int32_t id = seq[t];
      if (id < 0 || id >= vocab_size_)
        throw InvalidArgument("Transformer: token id " + std::to_string(id) + " at position " +
                              std::to_string(t) + " of sequence " + std::to_string(s) +
                              " outside [0, vocab_size " + std::to_string(vocab_size_) + ")");
      x.col(offsets_[s] + static_cast<Index>(t)) = table.row(id).transpose();
    }
  }
  return x;
}

namespace forward {

// The product runs in fixed panels of kPanelColumns token columns, one thread per panel: Eigen's
// own multi-threaded GEMM splits the rows by the thread count and its kernels round the row
// blocks differently, so activations (and calibration statistics) would depend on
// OMP_NUM_THREADS and on the number of MPI ranks. Inside the parallel loop Eigen runs serially,
// and every column's arithmetic depends only on its place in its panel.
constexpr Index kPanelColumns = 128;
constexpr double kRowBlockFlops = 2e9;
MatrixXf project(const MatrixXf& w, const VectorXf& bias, const MatrixXf& x) {
  MatrixXf y(w.rows(), x.cols());
  const Index panels = (x.cols() + kPanelColumns - 1) / kPanelColumns;
  detail::parallel_for(
      panels,
      [&](std::int64_t p) {
        // One panel is at most ~1 s of work at 7B size: the interrupt check between panels keeps
        // Ctrl-C prompt (parallel_for rethrows it after the loop and skips the panels left).
        const Index begin = static_cast<Index>(p) * kPanelColumns;
        const Index width = std::min(kPanelColumns, x.cols() - begin);
        // A panel of a 7B-sized projection is ~1e10 flops: its rows are split into blocks of
        // about kRowBlockFlops, with an interrupt check before each (small projections: one block,
        // the same arithmetic as before; either way independent of the thread count).
        const double row_flops = 2.0 * static_cast<double>(w.cols()) * static_cast<double>(width);
        const Index rows = std::max<Index>(
            64, static_cast<Index>(kRowBlockFlops / std::max(row_flops, 1.0)) / 64 * 64);
        for (Index r0 = 0; r0 < w.rows(); r0 += rows) {
          throw_if_interrupted("running the forward pass");
          const Index rb = std::min(rows, w.rows() - r0);
          if (rb == w.rows()) {
            y.middleCols(begin, width).noalias() = w * x.middleCols(begin, width);
          } else {
            y.block(r0, begin, rb, width).noalias() =
                w.middleRows(r0, rb) * x.middleCols(begin, width);
          }
        }
      },
      // Even one panel inside a parallel region: Eigen stays serial. Called from inside one (the
      // MoE block's experts run in parallel), a plain loop in that region keeps Eigen serial too,
      // so its GEMMs round the same whatever the thread count.
      /*min_parallel=*/detail::in_parallel() ? panels + 1 : 1);
  if (bias.size() != 0) y.colwise() += bias;
  return y;
}

MatrixXf rms_norm(const MatrixXf& x, const VectorXf& weight, double eps) {
  MatrixXf y(x.rows(), x.cols());
  const float feps = static_cast<float>(eps);
  for (Index t = 0; t < x.cols(); ++t) {
    const float var = x.col(t).squaredNorm() / static_cast<float>(x.rows());
    const float inv = 1.0f / std::sqrt(var + feps);
    y.col(t) = weight.cwiseProduct(x.col(t) * inv);
  }
  return y;
}

namespace {

// DeepSeek-V3's multi-head latent attention (MlaConfig), the plain (not weight-absorbed) form:
// per head [k_nope | v] from the normalised latent, one rotary key shared by every head.
MatrixXf latent_attention_heads(const DecoderLayerWeights& w, const MatrixXf& h,
                                const TokenBatch& batch) {
  const MlaWeights& m = *w.mla;
  const Index heads = w.num_heads;
  const Index dn = m.nope_dim;
  const Index dr = m.rope_dim;
  const Index dv = m.v_dim;
  const Index qk = dn + dr;
  const Index rank = m.kv_b.cols();
  const VectorXf none;
  MatrixXf q = m.q_a.size() != 0
                   ? project(m.q_b, none, rms_norm(project(m.q_a, none, h), m.q_a_norm, m.eps))
                   : project(m.q_b, none, h);     // heads*qk x T
  const MatrixXf ckv = project(m.kv_a, none, h);  // (rank + dr) x T
  const MatrixXf kv = project(m.kv_b, none, rms_norm(ckv.topRows(rank), m.kv_a_norm, m.eps));
  MatrixXf k_rope = ckv.bottomRows(dr);
  const auto rope = m.rope_interleave ? apply_rope_interleaved : apply_rope;
  const int num_seq = batch.num_sequences();
  for (int s = 0; s < num_seq; ++s)
    for (Index t = batch.offset(s); t < batch.offset(s + 1); ++t) {
      const Index pos = t - batch.offset(s);
      for (Index hh = 0; hh < heads; ++hh)
        rope(q, hh * qk + dn, t, batch.cos_at(pos), batch.sin_at(pos), dr / 2);
      rope(k_rope, 0, t, batch.cos_at(pos), batch.sin_at(pos), dr / 2);
    }
  // DeepSeek's softmax_scale = qk^-0.5 (times yarn's mscale^2), a Python double used in F32.
  const float scale = batch.softmax_scale_factor() == 1.0
                          ? 1.0f / std::sqrt(static_cast<float>(qk))
                          : static_cast<float>(std::pow(static_cast<double>(qk), -0.5) *
                                               batch.softmax_scale_factor());
  MatrixXf o(heads * dv, h.cols());
  detail::parallel_for(static_cast<Index>(num_seq) * heads, [&](Index job) {
    const auto s = static_cast<int>(job / heads);
    const Index hh = job % heads;
    const Index off = batch.offset(s);
    const Index len = batch.offset(s + 1) - off;
    if (len == 0) return;
    const Index kv_row = hh * (dn + dv);
    const MatrixXf scores =
        (kv.block(kv_row, off, dn, len).transpose() * q.block(hh * qk, off, dn, len) +
         k_rope.middleCols(off, len).transpose() * q.block(hh * qk + dn, off, dr, len)) *
        scale;
    o.block(hh * dv, off, dv, len).noalias() =
        kv.block(kv_row + dn, off, dv, len) * causal_softmax(scores);
  });
  return o;
}

}  // namespace

MatrixXf attention_heads(const DecoderLayerWeights& w, const MatrixXf& h, const TokenBatch& batch) {
  if (w.mla) return latent_attention_heads(w, h, batch);
  const Index heads = w.num_heads;
  const Index kv_heads = w.num_kv_heads;
  const Index hd = w.head_dim;
  const Index group = heads / kv_heads;
  const Index half = hd / 2;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int num_seq = batch.num_sequences();
  MatrixXf q = project(w.q, w.q_bias, h);  // heads*hd x total
  MatrixXf k = project(w.k, w.k_bias, h);  // kv*hd x total
  const MatrixXf v = project(w.v, w.v_bias, h);
  for (int s = 0; s < num_seq; ++s)
    for (Index t = batch.offset(s); t < batch.offset(s + 1); ++t) {
      const Index pos = t - batch.offset(s);
      for (Index hh = 0; hh < heads; ++hh)
        apply_rope(q, hh * hd, t, batch.cos_at(pos), batch.sin_at(pos), half);
      for (Index hh = 0; hh < kv_heads; ++hh)
        apply_rope(k, hh * hd, t, batch.cos_at(pos), batch.sin_at(pos), half);
    }
  MatrixXf o(heads * hd, h.cols());
  const Index pairs = static_cast<Index>(num_seq) * heads;
  // One (sequence, head) pair per job, handed out dynamically: sequences differ in length.
  detail::parallel_for(pairs, [&](Index job) {
    const auto s = static_cast<int>(job / heads);
    const Index hh = job % heads;
    const Index kvh = hh / group;  // query head h reads KV head h / (heads / kv_heads)
    const Index off = batch.offset(s);
    const Index len = batch.offset(s + 1) - off;
    if (len == 0) return;
    // scores(j, i) = k_j . q_i / sqrt(hd) for key j <= query i.
    const MatrixXf scores =
        (k.block(kvh * hd, off, hd, len).transpose() * q.block(hh * hd, off, hd, len)) * scale;
    o.block(hh * hd, off, hd, len).noalias() =
        v.block(kvh * hd, off, hd, len) * causal_softmax(scores);
  });
  return o;
}

namespace {
MatrixXf silu_times(const MatrixXf& g, const MatrixXf& u) {
  return (g.array() / (1.0f + (-g.array()).exp())) * u.array();  // silu(g) * u
}
}  // namespace

MatrixXf mlp_activations(const DecoderLayerWeights& w, const MatrixXf& h) {
  return silu_times(project(w.gate, w.gate_bias, h), project(w.up, w.up_bias, h));
}

void grouped_topk(const MoeBlockWeights& b, const float* scores, const std::vector<char>* keep,
                  int* chosen, float* weights) {
  const auto experts = static_cast<int>(b.router.rows());
  // Per-thread scratch: the exact re-routed error calls this for every sample of every candidate.
  thread_local std::vector<int> ids;  // the kept experts in id order
  thread_local std::vector<float> biased;
  thread_local std::vector<float> group_score;
  thread_local std::vector<int> order;
  thread_local std::vector<int> candidates;
  ids.clear();
  for (int e = 0; e < experts; ++e)
    if (keep == nullptr || (*keep)[static_cast<std::size_t>(e)]) ids.push_back(e);
  const auto n = static_cast<int>(ids.size());
  const int groups = b.num_groups;
  if (groups < 1 || n % groups != 0 || b.topk_groups < 1 || b.topk_groups > groups)
    throw InvalidArgument("grouped routing: " + std::to_string(n) + " experts do not form " +
                          std::to_string(groups) + " groups of equal size (n_group) with " +
                          std::to_string(b.topk_groups) + " kept (topk_group)");
  const int per = n / groups;
  const int k = b.top_k;
  if (k < 1 || k > b.topk_groups * per)
    throw InvalidArgument("grouped routing: num_experts_per_tok " + std::to_string(k) +
                          " exceeds the " + std::to_string(b.topk_groups * per) +
                          " experts of topk_group " + std::to_string(b.topk_groups) + " groups");
  // c = s + b: used only to choose (DeepSeek's auxiliary-loss-free balancing bias).
  biased.resize(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const auto e = static_cast<std::size_t>(ids[static_cast<std::size_t>(i)]);
    biased[static_cast<std::size_t>(i)] =
        scores[e] + (b.score_bias.size() != 0 ? b.score_bias[static_cast<Index>(e)] : 0.0f);
  }
  // A group's score: the sum of its two largest biased scores (one when a group has one expert).
  group_score.resize(static_cast<std::size_t>(groups));
  for (int g = 0; g < groups; ++g) {
    float first = -std::numeric_limits<float>::infinity();
    float second = first;
    for (int i = g * per; i < (g + 1) * per; ++i) {
      const float v = biased[static_cast<std::size_t>(i)];
      if (v > first) {
        second = first;
        first = v;
      } else if (v > second) {
        second = v;
      }
    }
    group_score[static_cast<std::size_t>(g)] = per > 1 ? first + second : first;
  }
  order.resize(static_cast<std::size_t>(groups));
  for (int g = 0; g < groups; ++g) order[static_cast<std::size_t>(g)] = g;
  auto by_value = [](const std::vector<float>& v) {
    return [&v](int a, int c) {
      const float va = v[static_cast<std::size_t>(a)];
      const float vc = v[static_cast<std::size_t>(c)];
      return va != vc ? va > vc : a < c;  // equal: the lower index first
    };
  };
  std::partial_sort(order.begin(), order.begin() + b.topk_groups, order.end(),
                    by_value(group_score));
  // The kept groups' experts (positions into ids), then their top k by biased score.
  candidates.clear();
  for (int j = 0; j < b.topk_groups; ++j)
    for (int i = order[static_cast<std::size_t>(j)] * per;
         i < (order[static_cast<std::size_t>(j)] + 1) * per; ++i)
      candidates.push_back(i);
  std::sort(candidates.begin(), candidates.end());
  std::partial_sort(candidates.begin(), candidates.begin() + k, candidates.end(), by_value(biased));
  float sum = 0.0f;
  for (int j = 0; j < k; ++j) {
    chosen[j] = ids[static_cast<std::size_t>(candidates[static_cast<std::size_t>(j)])];
    weights[j] = scores[chosen[j]];
    sum += weights[j];
  }
  // Transformers adds 1e-20 to the denominator; the unbiased scores, not c, give the weights.
  const float norm = b.norm_topk_prob ? 1.0f / (sum + 1e-20f) : 1.0f;
  for (int j = 0; j < k; ++j) weights[j] = weights[j] * norm * b.routed_scaling_factor;
}

MoeRouting moe_routing(const MoeBlockWeights& b, const MatrixXf& h) {
  const MatrixXf logits = project(b.router, VectorXf(), h);  // experts x T
  const Index experts = logits.rows();
  const Index k = b.top_k;
  MoeRouting r;
  r.probs.resize(experts, h.cols());
  r.chosen.resize(k, h.cols());
  r.weights.resize(k, h.cols());
  if (b.sigmoid_scores) {
    r.probs = (1.0f + (-logits.array()).exp()).inverse().matrix();
    for (Index t = 0; t < h.cols(); ++t)
      grouped_topk(b, r.probs.col(t).data(), b.keep.empty() ? nullptr : &b.keep,
                   r.chosen.col(t).data(), r.weights.col(t).data());
    return r;
  }
  std::vector<int> order(static_cast<std::size_t>(experts));
  for (Index t = 0; t < h.cols(); ++t) {
    // Removed experts: logit -inf, probability 0, the softmax over the kept rows.
    VectorXf l = logits.col(t);
    for (Index e = 0; e < experts && !b.keep.empty(); ++e)
      if (!b.keep[static_cast<std::size_t>(e)]) l[e] = -std::numeric_limits<float>::infinity();
    const float mx = l.maxCoeff();
    r.probs.col(t) = (l.array() - mx).exp();
    r.probs.col(t) /= r.probs.col(t).sum();
    // Top k by probability; equal probabilities: the lower expert id first.
    for (Index e = 0; e < experts; ++e) order[static_cast<std::size_t>(e)] = static_cast<int>(e);
    // (A removed expert ranks below every kept one, even one whose probability underflowed.)
    const auto rank = [&](int e) {
      return b.keep.empty() || b.keep[static_cast<std::size_t>(e)] ? r.probs(e, t) : -1.0f;
    };
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int a, int c) {
      const float pa = rank(a);
      const float pc = rank(c);
      return pa != pc ? pa > pc : a < c;
    });
    float sum = 0.0f;
    for (Index j = 0; j < k; ++j) {
      r.chosen(j, t) = order[static_cast<std::size_t>(j)];
      r.weights(j, t) = r.probs(order[static_cast<std::size_t>(j)], t);
      sum += r.weights(j, t);
    }
    if (b.norm_topk_prob) r.weights.col(t) /= sum;
  }
  return r;
}

MatrixXf expert_output(const ExpertWeights& e, const MatrixXf& x) {
  return project(e.down, VectorXf(),
                 silu_times(project(e.gate, VectorXf(), x), project(e.up, VectorXf(), x)));
}

MatrixXf moe_block(const MoeBlockWeights& b, const MatrixXf& h, const MoeRouting& r,
                   MatrixXf* contributions) {
  const Index k = r.chosen.rows();
  // Expert-major: all tokens are routed first, then each expert with routed tokens is read, run
  // on its tokens as one GEMM and dropped, so at most one expert per thread is in memory (a
  // layer's 256 DeepSeek-V3 experts are 45 GB as F32). routed[e]: the slots t * k + j with
  // chosen(j, t) == e, in token order.
  std::vector<std::vector<Index>> routed(static_cast<std::size_t>(b.num_experts));
  for (Index t = 0; t < h.cols(); ++t)
    for (Index j = 0; j < k; ++j) {
      const int e = r.chosen(j, t);
      if (e < 0 || e >= b.num_experts)
        throw InvalidArgument("moe_block: routing chose expert " + std::to_string(e) +
                              " of a block of " + std::to_string(b.num_experts));
      routed[static_cast<std::size_t>(e)].push_back(t * k + j);
    }
  std::vector<int> active;
  for (int e = 0; e < b.num_experts; ++e)
    if (!routed[static_cast<std::size_t>(e)].empty()) active.push_back(e);
  // Each slot's weighted output w E(x_t), as MoeTrace's contributions. The experts run in
  // parallel (each writes only its own slots; the GEMMs inside stay serial on one thread).
  MatrixXf own;
  MatrixXf& c = contributions != nullptr ? *contributions : own;
  c.setZero(h.rows(), k * h.cols());
  detail::parallel_for(
      static_cast<std::int64_t>(active.size()),
      [&](std::int64_t i) {
        const int e = active[static_cast<std::size_t>(i)];
        const std::vector<Index>& slots = routed[static_cast<std::size_t>(e)];
        MatrixXf x(h.rows(), static_cast<Index>(slots.size()));
        for (std::size_t s = 0; s < slots.size(); ++s)
          x.col(static_cast<Index>(s)) = h.col(slots[s] / k);
        const MatrixXf out = expert_output(b.expert(e), x);
        for (std::size_t s = 0; s < slots.size(); ++s)
          c.col(slots[s]) = out.col(static_cast<Index>(s)) * r.weights(slots[s] % k, slots[s] / k);
      },
      /*min_parallel=*/2);
  // Each token's sum in increasing expert id, as Transformers' loop over experts adds them.
  MatrixXf y = MatrixXf::Zero(h.rows(), h.cols());
  std::vector<Index> order(static_cast<std::size_t>(k));
  for (Index t = 0; t < h.cols(); ++t) {
    for (Index j = 0; j < k; ++j) order[static_cast<std::size_t>(j)] = j;
    std::sort(order.begin(), order.end(),
              [&](Index a, Index d) { return r.chosen(a, t) < r.chosen(d, t); });
    for (const Index j : order) y.col(t) += c.col(t * k + j);
  }
  if (b.shared.gate.size() != 0) {
    const MatrixXf s = expert_output(b.shared, h);
    if (b.shared_gate.size() == 0) {  // DeepSeek-V3's shared experts: ungated
      y += s;
    } else {
      const Eigen::RowVectorXf g = b.shared_gate * h;
      for (Index t = 0; t < h.cols(); ++t) y.col(t) += s.col(t) / (1.0f + std::exp(-g[t]));
    }
  }
  return y;
}

}  // namespace forward

Transformer::Transformer(const Checkpoint& checkpoint)
    : checkpoint_(&checkpoint), config_(checkpoint.config()) {
  config_.validate();
  if (!config_.rope_scaling.invalid.empty())
    throw InvalidArgument((checkpoint.folder() / "config.json").string() +
                          ": rope_scaling: " + config_.rope_scaling.invalid);
  if (!config_.forward_unsupported.empty()) {
    std::string fields;
    for (const std::string& f : config_.forward_unsupported)
      fields += (fields.empty() ? "" : "; ") + f;
    throw InvalidArgument((checkpoint.folder() / "config.json").string() +
                          ": qprune's forward pass does not implement " + fields +
                          "; it would compute another model");
  }
  checkpoint.check_expected_tensors();
}

void Transformer::set_expert_keep(int layer, std::vector<char> keep) {
  const MoeConfig& m = config_.moe;
  const std::string where = "layer " + std::to_string(layer) + " expert mask: ";
  if (layer < 0 || layer >= config_.num_hidden_layers || !is_moe_layer(config_, layer))
    throw InvalidArgument(where + "not a MoE layer of this model");
  if (static_cast<std::int64_t>(keep.size()) != m.num_experts)
    throw InvalidArgument(where + std::to_string(keep.size()) + " flags for " +
                          std::to_string(m.num_experts) + " experts");
  const auto kept = std::count_if(keep.begin(), keep.end(), [](char c) { return c != 0; });
  if (kept < m.num_experts_per_tok)
    throw InvalidArgument(where + std::to_string(kept) + " experts kept, fewer than " +
                          "num_experts_per_tok = " + std::to_string(m.num_experts_per_tok));
  if (m.n_group > 1) {
    const std::int64_t per = m.num_experts / m.n_group;
    for (std::int64_t g = 0; g < m.n_group; ++g) {
      const auto in_group = std::count_if(keep.begin() + g * per, keep.begin() + (g + 1) * per,
                                          [](char c) { return c != 0; });
      if (in_group * m.n_group != kept)
        throw InvalidArgument(where + "routing group " + std::to_string(g) + " keeps " +
                              std::to_string(in_group) + " of " + std::to_string(kept) +
                              " kept experts; grouped routing needs as many in every group");
    }
  }
  expert_keep_.resize(static_cast<std::size_t>(config_.num_hidden_layers));
  expert_keep_[static_cast<std::size_t>(layer)] = std::move(keep);
}

MatrixXf Transformer::hidden_states(const std::vector<std::vector<std::int32_t>>& sequences,
                                    const ForwardHooks* hooks, int num_layers) const {
  const ModelConfig& c = config_;
  const int layers = num_layers < 0 ? static_cast<int>(c.num_hidden_layers)
                                    : std::min(num_layers, static_cast<int>(c.num_hidden_layers));
  const TokenBatch batch(sequences, c);
  // The activations of the whole batch are the big allocation of a forward pass (hidden x tokens
  // per stream, intermediate x tokens in the MLP).
  return detail::allocation_context(
      "the forward-pass activations of " + std::to_string(batch.num_tokens()) + " tokens (hidden " +
          std::to_string(c.hidden_size) + ", intermediate " + std::to_string(c.intermediate_size) +
          ")",
      4.0 * static_cast<double>(batch.num_tokens()) *
          static_cast<double>(3 * c.hidden_size + 3 * c.intermediate_size),
      [&] { return hidden_states_of(batch, hooks, layers); });
}

MatrixXf Transformer::hidden_states_of(const TokenBatch& batch, const ForwardHooks* hooks,
                                       int layers) const {
  const ModelConfig& c = config_;
  MatrixXf x = batch.embed(*checkpoint_);
  check_finite(x, *checkpoint_, "the token embeddings", "model.embed_tokens.weight");
  // The hooks see one sequence's columns at a time.
  auto hand_out = [&](const auto& hook, int layer, const MatrixXf& m) {
    for (int s = 0; s < batch.num_sequences(); ++s)
      hook(layer, s,
           MatrixXf(m.middleCols(batch.offset(s), batch.offset(s + 1) - batch.offset(s))));
  };
  // A MoE trace is cut per sequence like the other hooks' matrices.
  auto hand_out_moe = [&](int layer, const MatrixXf& normed, const MoeRouting& routing,
                          const MatrixXf& contributions) {
    const Index k = routing.chosen.rows();
    for (int s = 0; s < batch.num_sequences(); ++s) {
      const Index off = batch.offset(s);
      const Index len = batch.offset(s + 1) - off;
      const MatrixXf input = normed.middleCols(off, len);
      const MoeRouting part{routing.probs.middleCols(off, len), routing.chosen.middleCols(off, len),
                            routing.weights.middleCols(off, len)};
      const MatrixXf contrib = contributions.middleCols(off * k, len * k);
      hooks->moe(layer, s, MoeTrace{&input, &part, &contrib});
    }
  };
  for (int layer = 0; layer < layers; ++layer) {
    throw_if_interrupted("running the forward pass");
    DecoderLayerWeights w = DecoderLayerWeights::read(*checkpoint_, layer);
    if (w.moe && static_cast<std::size_t>(layer) < expert_keep_.size())
      w.moe->keep = expert_keep_[static_cast<std::size_t>(layer)];
    const std::string p = layer_prefix(layer);
    const MatrixXf o =
        forward::attention_heads(w, forward::rms_norm(x, w.input_norm, c.rms_norm_eps), batch);
    check_finite(o, *checkpoint_, "layer " + std::to_string(layer) + " attention (o_proj input)",
                 p + "input_layernorm / " + p + "self_attn.{q,k,v}_proj");
    if (hooks != nullptr && hooks->attn) hand_out(hooks->attn, layer, o);
    x += forward::project(w.o, w.o_bias, o);
    check_finite(x, *checkpoint_, "layer " + std::to_string(layer) + " attention output",
                 p + "self_attn.o_proj");
    if (hooks != nullptr && hooks->stream)
      hand_out([&](int l, int s, const MatrixXf& m) { hooks->stream(l, s, false, m); }, layer, x);
    const MatrixXf normed = forward::rms_norm(x, w.post_attention_norm, c.rms_norm_eps);
    if (w.moe) {
      const MoeRouting routing = forward::moe_routing(*w.moe, normed);
      const bool trace = hooks != nullptr && static_cast<bool>(hooks->moe);
      MatrixXf contributions;
      x += forward::moe_block(*w.moe, normed, routing, trace ? &contributions : nullptr);
      check_finite(x, *checkpoint_, "layer " + std::to_string(layer) + " MoE block output",
                   p + "post_attention_layernorm / " + p + "the router and experts");
      if (trace) hand_out_moe(layer, normed, routing, contributions);
    } else {
      const MatrixXf a = forward::mlp_activations(w, normed);
      check_finite(a, *checkpoint_, "layer " + std::to_string(layer) + " MLP (down_proj input)",
                   p + "post_attention_layernorm / " + p + "mlp.{gate,up}_proj");
      if (hooks != nullptr && hooks->mlp) hand_out(hooks->mlp, layer, a);
      x += forward::project(w.down, w.down_bias, a);
      check_finite(x, *checkpoint_, "layer " + std::to_string(layer) + " MLP output",
                   p + "mlp.down_proj");
    }
    if (hooks != nullptr && hooks->stream)
      hand_out([&](int l, int s, const MatrixXf& m) { hooks->stream(l, s, true, m); }, layer, x);
  }
  return x;
}

void Transformer::run_layers(const std::vector<std::vector<std::int32_t>>& sequences,
                             const ForwardHooks& hooks, int num_layers) const {
  (void)hidden_states(sequences, &hooks, num_layers);
}

namespace {

// The lm_head of a config (the embedding when tied).
MatrixXf read_head(const Checkpoint& ck, const ModelConfig& c) {
  return ck.read_matrix_f32(c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
}

}  // namespace

MatrixXf Transformer::logits(std::span<const std::int32_t> tokens,
                             const ForwardHooks* hooks) const {
  const std::vector<std::vector<std::int32_t>> seqs{
      std::vector<std::int32_t>(tokens.begin(), tokens.end())};
  const MatrixXf x = hidden_states(seqs, hooks, -1);
  const MatrixXf h =
      forward::rms_norm(x, read_vec(*checkpoint_, "model.norm.weight"), config_.rms_norm_eps);
  MatrixXf out = read_head(*checkpoint_, config_) * h;
  check_finite(out, *checkpoint_, "the logits", "model.norm / lm_head");
  return out;
}

std::vector<Eigen::VectorXd> Transformer::next_token_log_probs(
    const std::vector<std::vector<std::int32_t>>& sequences, const ForwardHooks* hooks) const {
  const MatrixXf x = hidden_states(sequences, hooks, -1);
  const VectorXf norm_w = read_vec(*checkpoint_, "model.norm.weight");
  const MatrixXf head = read_head(*checkpoint_, config_);
  std::vector<Eigen::VectorXd> out(sequences.size());
  Index off = 0;
  for (std::size_t s = 0; s < sequences.size(); ++s) {
    const auto len = static_cast<Index>(sequences[s].size());
    Eigen::VectorXd lp(std::max<Index>(len - 1, 0));
    if (len > 1) {
      // One sequence's logits at a time: vocab x len floats, not vocab x all tokens.
      const MatrixXf logit =
          head * forward::rms_norm(x.middleCols(off, len - 1), norm_w, config_.rms_norm_eps);
      detail::parallel_for_static(len - 1, [&](Index t) {
        const Eigen::VectorXd col = logit.col(t).cast<double>();
        const double mx = col.maxCoeff();
        const double lse = mx + std::log((col.array() - mx).exp().sum());
        lp[t] = col[sequences[s][static_cast<std::size_t>(t + 1)]] - lse;
      });
      check_finite(logit, *checkpoint_, "the logits", "model.norm / lm_head");
    }
    out[s] = std::move(lp);
    off += len;
  }
  return out;
}

}  // namespace qprune
