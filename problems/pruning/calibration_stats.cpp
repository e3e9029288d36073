// Calibration statistics files (docs/calibration_stats.md): a validated safetensors layout with
// per-layer Grams and means, read one layer at a time from a read-only map.
#include "qprune/calibration_stats.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <regex>

#include "problems/checkpoint/mapped_file.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"

namespace qprune {

const char* stats_kind_name(StatsKind kind) { return kind == StatsKind::kMlp ? "mlp" : "attn"; }

std::string checkpoint_config_hash(const Checkpoint& checkpoint) {
  const std::string text = detail::read_text_file(checkpoint.folder() / "config.json");
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ULL;
  char buf[40];
  std::snprintf(buf, sizeof buf, "fnv1a64:%016llx", static_cast<unsigned long long>(h));
  return buf;
}

namespace {

std::string tensor_name(StatsKind kind, int layer, const char* what) {
  return "layers." + std::to_string(layer) + "." + stats_kind_name(kind) + "." + what;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::int64_t parse_positive(const std::string& path, const std::string& key,
                            const std::map<std::string, std::string>& meta) {
  const auto it = meta.find(key);
  if (it == meta.end())
    throw ParseError(path, 0, "expected __metadata__ key '" + key + "', found none");
  try {
    std::size_t used = 0;
    const long long v = std::stoll(it->second, &used);
    if (used == it->second.size() && v > 0) return v;
  } catch (const std::exception&) {
  }
  throw ParseError(
      path, 0,
      "expected __metadata__ '" + key + "' to be a positive integer, found '" + it->second + "'");
}

}  // namespace

struct CalibrationStatsFile::Impl {
  SafetensorsFile file;
  std::int64_t tokens = 0;
  int layers = 0;
  std::string model;
  std::int64_t size[2] = {0, 0};
  bool mean[2] = {false, false};
  std::int64_t experts = 0;        // E of every MoE layer; 0: none
  std::vector<char> expert_layer;  // per layer: 1 when it has expert statistics
};

namespace {

std::string expert_tensor(int layer, const char* what) {
  return "layers." + std::to_string(layer) + ".experts." + what;
}

}  // namespace

CalibrationStatsFile::CalibrationStatsFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CalibrationStatsFile::CalibrationStatsFile(CalibrationStatsFile&&) noexcept = default;
CalibrationStatsFile& CalibrationStatsFile::operator=(CalibrationStatsFile&&) noexcept = default;
CalibrationStatsFile::~CalibrationStatsFile() = default;

CalibrationStatsFile CalibrationStatsFile::open(const std::filesystem::path& path) {
  auto impl = std::make_unique<Impl>(
      Impl{SafetensorsFile::open(path), 0, 0, {}, {0, 0}, {false, false}, 0, {}});
  const std::string p = path.string();
  const auto& meta = impl->file.metadata();
  const auto format = meta.find("format");
  // The safetensors writer always stores format = "pt"; ours is under "qprune_format" as well.
  const auto qformat = meta.find("qprune_format");
  const std::string found = qformat != meta.end()  ? qformat->second
                            : format != meta.end() ? format->second
                                                   : "none";
  if (found != kFormat)
    throw ParseError(p, 0,
                     std::string("expected __metadata__ format '") + kFormat + "', found '" +
                         found + "' (not a qprune calibration statistics file)");
  const auto version = meta.find("version");
  if (version == meta.end() || version->second != std::to_string(kVersion))
    throw ParseError(p, 0,
                     "expected __metadata__ version '1', found '" +
                         (version == meta.end() ? std::string("none") : version->second) + "'");
  impl->tokens = parse_positive(p, "tokens", meta);
  impl->layers = static_cast<int>(parse_positive(p, "num_layers", meta));
  const auto model = meta.find("model");
  if (model == meta.end() || model->second.empty())
    throw ParseError(p, 0,
                     "expected __metadata__ key 'model' (the checkpoint's config hash), "
                     "found none");
  impl->model = model->second;

  static const std::regex kName(R"(layers\.(\d+)\.(mlp|attn)\.(gram|mean))");
  static const std::regex kExpertName(R"(layers\.(\d+)\.experts\.(gram|tokens|weight|inputs))");
  std::vector<int> count[2][2];  // [kind][gram/mean] -> layers seen
  impl->expert_layer.assign(static_cast<std::size_t>(impl->layers), 0);
  std::map<int, int> expert_parts;        // layer -> how many of its four expert tensors were seen
  std::int64_t sample_shape[2] = {0, 0};  // [S, H] of the inputs tensors
  for (const std::string& name : impl->file.tensor_names()) {
    const TensorInfo& info = impl->file.info(name);
    const auto at = static_cast<std::int64_t>(info.header_offset);
    std::smatch m;
    const bool expert = std::regex_match(name, m, kExpertName);
    if (!expert && !std::regex_match(name, m, kName))
      throw ParseError::at_byte(p, at,
                                "expected tensors named layers.L.{mlp,attn}.{gram,mean} or "
                                "layers.L.experts.{gram,tokens,weight,inputs}, found '" +
                                    name + "'");
    // More than 9 digits is past any layer count (and past what std::stoi takes without throwing).
    const int layer = m[1].length() > 9 ? std::numeric_limits<int>::max() : std::stoi(m[1]);
    if (layer >= impl->layers)
      throw ParseError::at_byte(p, at,
                                "expected layer < num_layers " + std::to_string(impl->layers) +
                                    " in '" + name + "', found " + m[1].str());
    if (info.dtype != Dtype::kF64 && info.dtype != Dtype::kF32)
      throw ParseError::at_byte(
          p, at, "expected dtype F64 or F32 for '" + name + "', found " + info.dtype_text);
    if (expert) {
      const std::string what = m[2];
      bool ok = false;
      std::int64_t& e = impl->experts;
      if (what == "inputs") {
        ok = info.shape.size() == 2 && info.shape[0] > 0 && info.shape[1] > 0 &&
             (sample_shape[0] == 0 ||
              (info.shape[0] == sample_shape[0] && info.shape[1] == sample_shape[1]));
        if (ok) {
          sample_shape[0] = info.shape[0];
          sample_shape[1] = info.shape[1];
        }
      } else {
        const std::int64_t n = info.shape.empty() ? -1 : info.shape[0];
        ok = (what == "gram" ? info.shape.size() == 2 && info.shape[0] == info.shape[1]
                             : info.shape.size() == 1) &&
             n > 0 && (e == 0 || n == e);
        if (ok) e = n;
      }
      if (!ok)
        throw ParseError::at_byte(p, at,
                                  "expected '" + name + "' to have shape " +
                                      (what == "inputs" ? std::string("[S, H], the same S, H in "
                                                                      "every layer")
                                       : what == "gram" ? "[E, E]"
                                                        : "[E]") +
                                      " (E experts, the same in every layer), found " +
                                      shape_text(info.shape));
      impl->expert_layer[static_cast<std::size_t>(layer)] = 1;
      ++expert_parts[layer];
      continue;
    }
    const int kind = m[2] == "mlp" ? 0 : 1;
    const int what = m[3] == "gram" ? 0 : 1;
    const std::int64_t n = info.shape.empty() ? -1 : info.shape[0];
    const bool ok = what == 0 ? info.shape.size() == 2 && info.shape[0] == info.shape[1]
                              : info.shape.size() == 1;
    std::int64_t& size = impl->size[kind];
    if (!ok || (size != 0 && n != size))
      throw ParseError::at_byte(
          p, at,
          "expected '" + name + "' to have shape " +
              (size != 0 ? shape_text(what == 0 ? std::vector<std::int64_t>{size, size}
                                                : std::vector<std::int64_t>{size})
                         : std::string(what == 0 ? "[n, n]" : "[n]")) +
              ", found " + shape_text(info.shape));
    size = n;
    count[kind][what].push_back(layer);
  }
  for (const auto& [layer, parts] : expert_parts)
    if (parts != 4)
      throw ParseError(p, 0,
                       "expected layers." + std::to_string(layer) +
                           ".experts.{gram,tokens,weight,inputs}, found " + std::to_string(parts) +
                           " of the four");
  const auto expert_layers = expert_parts.size();
  for (int kind = 0; kind < 2; ++kind) {
    const char* kname = kind == 0 ? "mlp" : "attn";
    const auto grams = count[kind][0].size(), means = count[kind][1].size();
    // MoE layers have expert statistics instead of mlp ones.
    const std::size_t want =
        static_cast<std::size_t>(impl->layers) - (kind == 0 ? expert_layers : 0);
    if (grams != 0 && grams != want)
      throw ParseError(
          p, 0,
          "expected layers.L." + std::string(kname) + ".gram for all " + std::to_string(want) +
              (kind == 0 && expert_layers != 0 ? " layers without experts" : " layers") +
              ", found " + std::to_string(grams));
    if (means != 0 && means != grams)
      throw ParseError(p, 0,
                       "expected layers.L." + std::string(kname) + ".mean for every layer " +
                           "with a gram or none, found " + std::to_string(means) + " of " +
                           std::to_string(grams));
    impl->mean[kind] = means != 0;
    if (grams == 0) impl->size[kind] = 0;
  }
  for (const int layer : count[0][0])
    if (impl->expert_layer[static_cast<std::size_t>(layer)] != 0)
      throw ParseError(p, 0,
                       "expected layer " + std::to_string(layer) +
                           " to have mlp or expert statistics, found both");
  if (impl->size[0] == 0 && impl->size[1] == 0 && impl->experts == 0)
    throw ParseError(p, 0,
                     "expected layers.L.mlp.gram, layers.L.attn.gram or layers.L.experts "
                     "tensors, found none");
  return CalibrationStatsFile(std::move(impl));
}

const std::filesystem::path& CalibrationStatsFile::path() const { return impl_->file.path(); }
std::int64_t CalibrationStatsFile::num_tokens() const { return impl_->tokens; }
int CalibrationStatsFile::num_layers() const { return impl_->layers; }
const std::string& CalibrationStatsFile::model() const { return impl_->model; }
bool CalibrationStatsFile::has(StatsKind kind) const {
  return impl_->size[static_cast<int>(kind)] != 0;
}
bool CalibrationStatsFile::has_mean(StatsKind kind) const {
  return impl_->mean[static_cast<int>(kind)];
}
std::int64_t CalibrationStatsFile::size(StatsKind kind) const {
  return impl_->size[static_cast<int>(kind)];
}

void CalibrationStatsFile::check_against(const ModelConfig& config, const std::string& config_hash,
                                         bool allow_other_model) const {
  const std::string p = path().string();
  if (!allow_other_model && impl_->model != config_hash)
    throw InvalidArgument(p + ": calibration statistics were computed for model " + impl_->model +
                          ", not for this checkpoint (" + config_hash + ")");
  if (impl_->layers != config.num_hidden_layers)
    throw InvalidArgument(p + ": statistics for " + std::to_string(impl_->layers) +
                          " layers, the checkpoint has " +
                          std::to_string(config.num_hidden_layers));
  for (int l = 0; l < impl_->layers; ++l) {
    const bool moe = is_moe_layer(config, l);
    const bool has = impl_->expert_layer[static_cast<std::size_t>(l)] != 0;
    if ((has && !moe) || (moe && !has && impl_->experts != 0))
      throw InvalidArgument(p + ": layer " + std::to_string(l) + (has ? " has" : " lacks") +
                            " expert statistics, but in the checkpoint's config.json it is " +
                            (moe ? "a MoE layer" : "a dense layer"));
  }
  if (impl_->experts != 0) {
    if (impl_->experts != config.moe.num_experts)
      throw InvalidArgument(p + ": expert statistics of " + std::to_string(impl_->experts) +
                            " experts, the checkpoint's config.json has " +
                            std::to_string(config.moe.num_experts));
    const ExpertStats first = read_experts(
        static_cast<int>(std::find(impl_->expert_layer.begin(), impl_->expert_layer.end(), 1) -
                         impl_->expert_layer.begin()));
    if (first.inputs.rows() != config.hidden_size)
      throw InvalidArgument(p + ": expert input samples of width " +
                            std::to_string(first.inputs.rows()) + ", hidden_size is " +
                            std::to_string(config.hidden_size));
  }
  const std::int64_t want[2] = {config.intermediate_size,
                                config.num_attention_heads * config.head_dim};
  for (int kind = 0; kind < 2; ++kind) {
    if (impl_->size[kind] == 0 || impl_->size[kind] == want[kind]) continue;
    const std::string name = tensor_name(static_cast<StatsKind>(kind), 0, "gram");
    throw InvalidArgument(p + ": tensor '" + name + "' has shape " +
                          shape_text({impl_->size[kind], impl_->size[kind]}) + ", expected " +
                          shape_text({want[kind], want[kind]}) + " (" +
                          (kind == 0 ? "intermediate_size" : "num_attention_heads * head_dim") +
                          " of the checkpoint's config.json)");
  }
}

ActivationStats CalibrationStatsFile::read(StatsKind kind, int layer) const {
  if (!has(kind))
    throw InvalidArgument(path().string() + ": no " + stats_kind_name(kind) +
                          " statistics in this file");
  if (layer < 0 || layer >= impl_->layers)
    throw InvalidArgument(path().string() + ": layer " + std::to_string(layer) +
                          " out of range [0, " + std::to_string(impl_->layers) + ")");
  ActivationStats s;
  s.gram = impl_->file.read_matrix(tensor_name(kind, layer, "gram"));  // NaN/Inf: ParseError
  if (has_mean(kind)) s.mean = impl_->file.read_vector(tensor_name(kind, layer, "mean"));
  s.num_tokens = impl_->tokens;
  return s;
}

std::int64_t CalibrationStatsFile::num_experts() const { return impl_->experts; }

bool CalibrationStatsFile::has_experts(int layer) const {
  return layer >= 0 && layer < impl_->layers &&
         impl_->expert_layer[static_cast<std::size_t>(layer)] != 0;
}

ExpertStats CalibrationStatsFile::read_experts(int layer) const {
  if (!has_experts(layer))
    throw InvalidArgument(path().string() + ": no expert statistics for layer " +
                          std::to_string(layer) +
                          " (calibrate the MoE checkpoint again with this qprune)");
  ExpertStats s;
  s.gram = impl_->file.read_matrix(expert_tensor(layer, "gram"));  // NaN/Inf: ParseError
  s.tokens = impl_->file.read_vector(expert_tensor(layer, "tokens"));
  s.weight = impl_->file.read_vector(expert_tensor(layer, "weight"));
  s.inputs = impl_->file.read_matrix(expert_tensor(layer, "inputs")).cast<float>().transpose();
  s.num_tokens = impl_->tokens;
  return s;
}

CalibrationStatsWriter::CalibrationStatsWriter(std::string model, int num_layers,
                                               std::int64_t num_tokens, Dtype dtype)
    : model_(std::move(model)), num_layers_(num_layers), num_tokens_(num_tokens), dtype_(dtype) {
  if (dtype_ != Dtype::kF64 && dtype_ != Dtype::kF32)
    throw InvalidArgument("CalibrationStatsWriter: dtype must be F64 or F32");
  if (model_.empty()) throw InvalidArgument("CalibrationStatsWriter: model must not be empty");
  if (num_layers_ < 1) throw InvalidArgument("CalibrationStatsWriter: num_layers must be >= 1");
  if (num_tokens_ < 1) throw InvalidArgument("CalibrationStatsWriter: num_tokens must be >= 1");
}

void CalibrationStatsWriter::add(StatsKind kind, int layer, const Eigen::MatrixXd& gram,
                                 const Eigen::VectorXd& mean) {
  const std::string name = tensor_name(kind, layer, "gram");
  if (layer < 0 || layer >= num_layers_)
    throw InvalidArgument("CalibrationStatsWriter: layer " + std::to_string(layer) +
                          " out of range [0, " + std::to_string(num_layers_) + ")");
  if (gram.rows() != gram.cols() || gram.rows() == 0 ||
      (mean.size() != 0 && mean.size() != gram.rows()))
    throw InvalidArgument("CalibrationStatsWriter: '" + name + "' must be square and the mean " +
                          "of the same size (or empty)");
  if (!gram.allFinite() || !mean.allFinite())
    throw InvalidArgument("CalibrationStatsWriter: '" + name + "' or its mean holds NaN/Inf");
  const auto key = std::make_pair(static_cast<int>(kind), layer);
  if (layers_.count(key))
    throw InvalidArgument("CalibrationStatsWriter: '" + name + "' given twice");
  layers_[key] = {gram, mean};
}

void CalibrationStatsWriter::add_experts(int layer, const ExpertStats& stats) {
  const std::string name = expert_tensor(layer, "gram");
  if (layer < 0 || layer >= num_layers_)
    throw InvalidArgument("CalibrationStatsWriter: layer " + std::to_string(layer) +
                          " out of range [0, " + std::to_string(num_layers_) + ")");
  const Eigen::Index e = stats.gram.rows();
  if (e == 0 || stats.gram.cols() != e || stats.tokens.size() != e || stats.weight.size() != e ||
      stats.inputs.size() == 0)
    throw InvalidArgument("CalibrationStatsWriter: '" + name +
                          "' must be square, tokens and weight of its size, inputs not empty");
  if (!experts_.empty() && experts_.begin()->second.gram.rows() != e)
    throw InvalidArgument("CalibrationStatsWriter: every MoE layer must have the same experts");
  if (!stats.gram.allFinite() || !stats.tokens.allFinite() || !stats.weight.allFinite() ||
      !stats.inputs.allFinite())
    throw InvalidArgument("CalibrationStatsWriter: the expert statistics of layer " +
                          std::to_string(layer) + " hold NaN/Inf");
  if (!experts_.emplace(layer, stats).second)
    throw InvalidArgument("CalibrationStatsWriter: '" + name + "' given twice");
}

void CalibrationStatsWriter::write(const std::filesystem::path& path) const {
  SafetensorsWriter w;
  for (int kind = 0; kind < 2; ++kind) {
    int count = 0, means = 0;
    std::int64_t size = -1;
    for (const auto& [key, value] : layers_) {
      if (key.first != kind) continue;
      ++count;
      means += value.second.size() != 0 ? 1 : 0;
      if (size >= 0 && value.first.rows() != size)
        throw InvalidArgument("CalibrationStatsWriter: layers of one kind must share one size");
      size = value.first.rows();
    }
    const int want = num_layers_ - (kind == 0 ? static_cast<int>(experts_.size()) : 0);
    if (count != 0 && count != want)
      throw InvalidArgument(std::string("CalibrationStatsWriter: ") +
                            stats_kind_name(static_cast<StatsKind>(kind)) + " statistics for " +
                            std::to_string(count) + " of " + std::to_string(want) +
                            " layers (all or none)");
    for (const auto& [key, value] : layers_)
      if (key.first == 0 && experts_.count(key.second) != 0)
        throw InvalidArgument("CalibrationStatsWriter: layer " + std::to_string(key.second) +
                              " has mlp and expert statistics");
    if (means != 0 && means != count)
      throw InvalidArgument("CalibrationStatsWriter: give a mean for every layer or for none");
  }
  if (layers_.empty() && experts_.empty())
    throw InvalidArgument("CalibrationStatsWriter: no statistics added");
  for (const auto& [layer, e] : experts_) {
    const auto n = e.gram.rows();
    w.add_matrix(expert_tensor(layer, "gram"), Dtype::kF64, e.gram, {n, n});
    w.add_matrix(expert_tensor(layer, "tokens"), Dtype::kF64, e.tokens, {n});
    w.add_matrix(expert_tensor(layer, "weight"), Dtype::kF64, e.weight, {n});
    const Eigen::MatrixXd rows = e.inputs.transpose().cast<double>();  // S x H, a row per token
    w.add_matrix(expert_tensor(layer, "inputs"), Dtype::kF32, rows, {rows.rows(), rows.cols()});
  }
  for (const auto& [key, value] : layers_) {
    const auto kind = static_cast<StatsKind>(key.first);
    // F32 holds magnitudes up to 3.4e38; a larger sum would be stored as Inf and refused on read.
    if (dtype_ == Dtype::kF32 &&
        (value.first.cwiseAbs().maxCoeff() > std::numeric_limits<float>::max() ||
         (value.second.size() != 0 &&
          value.second.cwiseAbs().maxCoeff() > std::numeric_limits<float>::max())))
      throw InvalidArgument("CalibrationStatsWriter: '" + tensor_name(kind, key.second, "gram") +
                            "' or its mean exceeds the F32 range (the activations are huge); "
                            "write F64 statistics (without --compact)");
    w.add_matrix(tensor_name(kind, key.second, "gram"), dtype_, value.first,
                 {value.first.rows(), value.first.cols()});
    if (value.second.size() != 0)
      w.add_matrix(tensor_name(kind, key.second, "mean"), dtype_, value.second,
                   {value.second.size()});
  }
  w.set_metadata("qprune_format", CalibrationStatsFile::kFormat);
  w.set_metadata("version", std::to_string(CalibrationStatsFile::kVersion));
  w.set_metadata("tokens", std::to_string(num_tokens_));
  w.set_metadata("num_layers", std::to_string(num_layers_));
  w.set_metadata("model", model_);
  w.write(path);
}

ActivationStats statistics_of(const Eigen::MatrixXd& activations) {
  ActivationStats s;
  s.gram = activations * activations.transpose();
  s.mean = activations.rowwise().mean();
  s.num_tokens = activations.cols();
  return s;
}

}  // namespace qprune
