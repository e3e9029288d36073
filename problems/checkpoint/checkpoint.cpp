// Hugging Face checkpoint folders: opening config.json + model.safetensors or index-listed shards
// (headers validated, then every tensor checked against config.json once, before any command reads
// one; tensor bytes are read from the files on demand), and writing an edited copy into a new
// folder without touching the source.
#include "qprune/checkpoint.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <sstream>
#include <string_view>

#include "core/json_input.hpp"
#include "core/memory_check.hpp"
#include "problems/checkpoint/mapped_file.hpp"
#include "qprune/atomic_output.hpp"
#include "qprune/error.hpp"
#include "qprune/interrupt.hpp"

namespace qprune {
namespace {

namespace fs = std::filesystem;
// nlohmann::json (std::map), not ordered_json: ordered_map inserts by a linear search, so an
// object of n keys parses in O(n^2) (a fuzzed config of 50,000 keys ran for minutes). Written
// configs have sorted keys, as Hugging Face's own save_pretrained writes them (sort_keys=True).
using Json = nlohmann::json;

constexpr const char* kConfigFile = "config.json";
constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

struct Checkpoint::Impl {
  fs::path folder;
  ModelConfig config;
  bool sharded = false;
  std::string index_text;                        // the original index JSON (sharded only)
  std::map<std::string, SafetensorsFile> files;  // shard file name -> open file
  std::map<std::string, std::string> shard_of;   // tensor name -> shard file name

  const std::string& shard(const std::string& name) const {
    const auto it = shard_of.find(name);
    if (it == shard_of.end())
      throw InvalidArgument(folder.string() + ": checkpoint has no tensor named '" + name + "'");
    return it->second;
  }
  const SafetensorsFile& file(const std::string& name) const { return files.at(shard(name)); }
  void validate() const;
  /// A block-wise FP8 tensor (F8_E4M3 with its weight_scale_inv, checked by validate()) as
  /// numbers, dequantised while its bytes stream in.
  template <class Scalar>
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> read_fp8(
      const std::string& name, const TensorReadOptions& options,
      std::int64_t* num_non_finite) const;
  [[nodiscard]] bool is_fp8(const std::string& name) const {
    return config.fp8 && file(name).info(name).dtype == Dtype::kF8E4M3;
  }
};

namespace {

// Block-wise FP8: the scale tensor of a weight and the shape the config implies for it.
constexpr std::string_view kScaleSuffix = "_scale_inv";
std::string scale_name(const std::string& weight) { return weight + std::string(kScaleSuffix); }
std::vector<std::int64_t> scale_shape(const std::vector<std::int64_t>& shape,
                                      const Fp8Quantization& q) {
  return {(shape[0] + q.block_rows - 1) / q.block_rows,
          (shape[1] + q.block_cols - 1) / q.block_cols};
}
// Bytes of F8 codes read per step: whole rows, about this many.
constexpr std::int64_t kFp8ChunkBytes = std::int64_t{1} << 20;

}  // namespace

template <class Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> Checkpoint::Impl::read_fp8(
    const std::string& name, const TensorReadOptions& options, std::int64_t* num_non_finite) const {
  const SafetensorsFile& f = file(name);
  const TensorInfo& t = f.info(name);
  const std::string scale = scale_name(name);
  const Eigen::MatrixXd s = file(scale).read_matrix(scale);  // NaN/Inf scales: ParseError
  const Eigen::Index rows = t.shape[0];
  const Eigen::Index cols = t.shape[1];
  const Eigen::Index block_rows = config.fp8->block_rows;
  const Eigen::Index block_cols = config.fp8->block_cols;
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> m(rows, cols);
  // Whole rows at a time through a bounded buffer: no full-size copy of the codes.
  const Eigen::Index chunk_rows =
      std::max<Eigen::Index>(1, kFp8ChunkBytes / std::max<Eigen::Index>(cols, 1));
  std::vector<std::byte> buffer(static_cast<std::size_t>(std::min(rows, chunk_rows) * cols));
  std::int64_t zeroed = 0;
  // The 256 codes decoded once (the loop below runs once per weight: 14.7 M per DeepSeek expert).
  static const std::array<double, 256> decoded = [] {
    std::array<double, 256> d{};
    for (std::size_t c = 0; c < d.size(); ++c)
      d[c] = static_cast<double>(f8_e4m3_to_float(static_cast<std::uint8_t>(c)));
    return d;
  }();
  for (Eigen::Index r0 = 0; r0 < rows; r0 += chunk_rows) {
    const Eigen::Index n = std::min(chunk_rows, rows - r0);
    const std::span<std::byte> part = std::span(buffer).first(static_cast<std::size_t>(n * cols));
    f.read_raw(name, static_cast<std::uint64_t>(r0 * cols), part);
    for (Eigen::Index i = 0; i < n; ++i) {
      const Eigen::Index row = r0 + i;
      for (Eigen::Index j = 0; j < cols; ++j) {
        const auto code = static_cast<std::uint8_t>(part[static_cast<std::size_t>(i * cols + j)]);
        // e4m3 (4 significant bits) times a double scale is exact; one rounding to Scalar.
        const double v = decoded[code] * s(row / block_rows, j / block_cols);
        const auto x = static_cast<Scalar>(v);
        if (!std::isfinite(x)) {
          if (options.non_finite == NonFinitePolicy::kError) {
            std::ostringstream what;
            what << "expected finite values in tensor '" << name << "', found " << v
                 << " (F8_E4M3 byte 0x" << std::hex << static_cast<unsigned>(code) << std::dec
                 << " times its scale) at element [" << row << ", " << j << "]";
            throw ParseError::at_byte(
                f.path().string(),
                static_cast<std::int64_t>(t.file_offset +
                                          static_cast<std::uint64_t>(row * cols + j)),
                what.str());
          }
          ++zeroed;
          m(row, j) = Scalar(0);
          continue;
        }
        m(row, j) = x;
      }
    }
  }
  if (num_non_finite != nullptr) *num_non_finite = zeroed;
  return m;
}

// The one check of the tensors against config.json, run by open() before anything reads a tensor.
// Every command then trusts the shapes (slicing, forward pass, problem building index into the
// tensors by the config's dimensions), so this is where a checkpoint that disagrees with its
// config must stop: a name under `model.layers.` must carry a layer number below
// num_hidden_layers; each tensor the config gives a meaning to (known_layer_tensors) must have
// exactly the shape the config implies and a float dtype; every required tensor must exist. Other
// tensors are allowed and carried through. Throws ParseError for the first problem (at the tensor's
// header byte in its shard, or naming the folder for a missing tensor) with the count of the
// others.
void Checkpoint::Impl::validate() const {
  const ModelConfig& c = config;
  // Two kinds of layer at most (a dense MLP, a MoE block): each kind's list and name index.
  struct LayerKind {
    std::vector<ExpectedTensor> tensors;
    std::map<std::string_view, std::size_t> slot_of;  // name after the layer prefix -> tensors
  };
  const auto num_layers = static_cast<std::size_t>(c.num_hidden_layers);  // <= 65536 (parse)
  std::array<std::optional<LayerKind>, 2> kinds;
  auto kind_for = [&](std::int64_t layer) -> const LayerKind& {
    std::optional<LayerKind>& kind = kinds[is_moe_layer(c, layer) ? 1 : 0];
    if (!kind) {
      kind.emplace();
      kind->tensors = known_layer_tensors(c, layer);
      for (std::size_t k = 0; k < kind->tensors.size(); ++k)
        kind->slot_of[kind->tensors[k].name] = k;
    }
    return *kind;
  };
  std::vector<const LayerKind*> kind_of(num_layers);
  std::vector<std::vector<std::uint8_t>> seen(num_layers);
  for (std::size_t l = 0; l < num_layers; ++l) {
    kind_of[l] = &kind_for(static_cast<std::int64_t>(l));
    seen[l].assign(kind_of[l]->tensors.size(), 0);
  }
  // DeepSeek-V3's multi-token-prediction layers follow the decoder layers.
  const std::int64_t layers_end = c.num_hidden_layers + c.num_nextn_predict_layers;
  const std::optional<MoeTensorNames> moe_names =
      c.moe.num_experts > 0 ? std::optional<MoeTensorNames>(moe_tensor_names(c)) : std::nullopt;
  const std::vector<ExpectedTensor> global = known_global_tensors(c);
  std::vector<std::uint8_t> global_seen(global.size(), 0);
  // The first problem is reported in full, the others counted.
  struct Problem {
    std::string path;
    std::int64_t byte = -1;  // -1: about the folder (a missing tensor), line 0
    std::string what;
  };
  std::optional<Problem> first;
  std::size_t count = 0;
  auto problem = [&](const std::string& path, std::int64_t byte, const std::string& what) {
    if (!first) first = Problem{path, byte, what};
    ++count;
  };
  const std::string layers_text = std::to_string(c.num_hidden_layers);
  const std::string layer_limit_text =
      c.num_nextn_predict_layers == 0
          ? "num_hidden_layers = " + std::to_string(c.num_hidden_layers)
          : "num_hidden_layers + num_nextn_predict_layers = " + std::to_string(layers_end);
  // A block-wise FP8 tensor needs its scale tensor, of the shape weight_block_size implies.
  auto check_fp8_scale = [&](const std::string& name, const TensorInfo& info, auto&& at_tensor) {
    if (info.shape.size() != 2) {
      at_tensor("expected F8_E4M3 tensor '" + name +
                "' to be a matrix [rows, cols] (block-wise FP8 scales), found shape " +
                shape_text(info.shape));
      return;
    }
    const Fp8Quantization& q = *c.fp8;
    const std::string scale = scale_name(name);
    const std::vector<std::int64_t> want = scale_shape(info.shape, q);
    const std::string why = " (the block scales of F8_E4M3 tensor '" + name + "' " +
                            shape_text(info.shape) + ", weight_block_size [" +
                            std::to_string(q.block_rows) + ", " + std::to_string(q.block_cols) +
                            "] in config.json)";
    const auto it = shard_of.find(scale);
    if (it == shard_of.end()) {
      at_tensor("expected tensor '" + scale + "' with shape " + shape_text(want) + why +
                ", found none");
      return;
    }
    const TensorInfo& s = files.at(it->second).info(scale);
    if (s.shape != want)
      at_tensor("expected tensor '" + scale + "' to have shape " + shape_text(want) + why +
                ", found " + shape_text(s.shape));
    else if (!is_float_dtype(s.dtype))
      at_tensor("expected tensor '" + scale + "' to have a float dtype (F32 in DeepSeek's " +
                "checkpoints)" + why + ", found " + s.dtype_text);
  };
  for (const auto& [name, shard] : shard_of) {
    const SafetensorsFile& f = files.at(shard);
    const TensorInfo& info = f.info(name);
    auto at_tensor = [&](const std::string& what) {
      problem(f.path().string(), static_cast<std::int64_t>(info.header_offset), what);
    };
    const ExpectedTensor* spec = nullptr;
    std::uint8_t* mark = nullptr;
    if (name.starts_with("model.layers.")) {
      const std::optional<std::int64_t> layer = tensor_layer_index(name);
      if (!layer) {
        at_tensor(
            "expected a layer tensor named model.layers.N.<name> with N a layer number in "
            "decimal (0 to " +
            std::to_string(c.num_hidden_layers - 1) + "), found '" + name + "'");
        continue;
      }
      if (*layer >= layers_end) {
        at_tensor("expected layer numbers below " + layer_limit_text +
                  " (config.json), found layer " + std::to_string(*layer) + " in tensor '" + name +
                  "'");
        continue;
      }
      // An MTP layer: the decoder-layer tensors it has are checked, none is required, and its
      // own (embed_tokens, enorm, hnorm, eh_proj, shared_head.*) are carried through.
      const bool mtp = *layer >= c.num_hidden_layers;
      const std::string_view rest =
          std::string_view(name).substr(layer_tensor_prefix(*layer).size());
      const LayerKind& kind = mtp ? kind_for(*layer) : *kind_of[static_cast<std::size_t>(*layer)];
      if (const auto it = kind.slot_of.find(rest); it != kind.slot_of.end()) {
        spec = &kind.tensors[it->second];
        if (!mtp) mark = &seen[static_cast<std::size_t>(*layer)][it->second];
      } else if (c.fp8 && rest.ends_with(kScaleSuffix) &&
                 kind.slot_of.count(rest.substr(0, rest.size() - kScaleSuffix.size())) != 0) {
        continue;  // the block scales of a known weight: checked with it (check_fp8_scale)
      } else if (moe_names && is_moe_layer(c, *layer) &&
                 rest.starts_with(moe_names->expert_prefix)) {
        // An expert the config does not count (or a projection an expert does not have).
        at_tensor("expected experts 0 to " + std::to_string(c.moe.num_experts - 1) +
                  " (number of experts in config.json) with " + moe_names->gate + ", " +
                  moe_names->up + " and " + moe_names->down + ", found tensor '" + name + "'");
        continue;
      }
    } else {
      for (std::size_t k = 0; k < global.size(); ++k)
        if (global[k].name == name) {
          spec = &global[k];
          mark = &global_seen[k];
        }
    }
    if (c.fp8 && info.dtype == Dtype::kF8E4M3) check_fp8_scale(name, info, at_tensor);
    if (spec == nullptr) continue;  // a tensor the config does not describe: carried through
    if (mark != nullptr) *mark = 1;
    if (info.shape != spec->shape)
      at_tensor("expected tensor '" + name + "' to have shape " + shape_text(spec->shape) + " (" +
                spec->dims + " from config.json), found " + shape_text(info.shape));
    else if (!is_float_dtype(info.dtype) && !(c.fp8 && info.dtype == Dtype::kF8E4M3))
      at_tensor("expected tensor '" + name + "' to have a float dtype (F64, F32, F16 or BF16" +
                (c.fp8 ? std::string(", or F8_E4M3 with its weight_scale_inv")
                       : std::string(info.dtype == Dtype::kF8E4M3
                                         ? "; F8_E4M3 needs quantization_config with "
                                           "quant_method \"fp8\" in config.json"
                                         : "")) +
                "), found " + info.dtype_text);
  }
  // Required tensors that are absent, and the layers that lack any.
  auto missing = [&](const std::string& name, const ExpectedTensor& spec) {
    problem(folder.string(), -1,
            "expected tensor '" + name + "' with shape " + shape_text(spec.shape) + " (" +
                spec.dims + " from config.json), found none");
  };
  std::vector<std::int64_t> incomplete;
  for (std::size_t l = 0; l < num_layers; ++l) {
    const std::size_t before = count;
    const std::vector<ExpectedTensor>& per_layer = kind_of[l]->tensors;
    for (std::size_t k = 0; k < per_layer.size(); ++k)
      if (per_layer[k].required && seen[l][k] == 0)
        missing(layer_tensor_prefix(static_cast<std::int64_t>(l)) + per_layer[k].name,
                per_layer[k]);
    if (count != before) incomplete.push_back(static_cast<std::int64_t>(l));
  }
  for (std::size_t k = 0; k < global.size(); ++k)
    if (global[k].required && global_seen[k] == 0) missing(global[k].name, global[k]);
  if (!first) return;

  std::string what = first->what;
  if (!incomplete.empty()) {
    what += incomplete.size() == 1 ? "; layer " : "; layers ";
    for (std::size_t k = 0; k < incomplete.size() && k < 8; ++k)
      what += (k ? ", " : "") + std::to_string(incomplete[k]);
    if (incomplete.size() > 8) what += ", ... (" + std::to_string(incomplete.size()) + " layers)";
    what +=
        " of " + layers_text + (incomplete.size() == 1 ? " lacks" : " lack") + " required tensors";
  }
  if (count > 1) what += "; " + std::to_string(count - 1) + " more problem(s) with the tensors";
  if (first->byte < 0) throw ParseError(first->path, 0, what);
  throw ParseError::at_byte(first->path, first->byte, what);
}

Checkpoint::Checkpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Checkpoint::Checkpoint(Checkpoint&&) noexcept = default;
Checkpoint& Checkpoint::operator=(Checkpoint&&) noexcept = default;
Checkpoint::~Checkpoint() = default;

Checkpoint Checkpoint::open(const fs::path& folder) {
  if (!fs::is_directory(folder))
    throw IoError(folder.string() + ": not a checkpoint folder (no such directory)");
  auto impl = std::make_unique<Impl>();
  impl->folder = folder;
  impl->config = ModelConfig::load((folder / kConfigFile).string());

  // Transformers looks for the single file first, then the index.
  if (fs::exists(folder / kSingleFile)) {
    SafetensorsFile f = SafetensorsFile::open(folder / kSingleFile);
    for (const std::string& name : f.tensor_names()) impl->shard_of[name] = kSingleFile;
    impl->files.emplace(kSingleFile, std::move(f));
    impl->validate();
    return Checkpoint(std::move(impl));
  }
  const fs::path index_path = folder / kIndexFile;
  if (!fs::exists(index_path))
    throw IoError(folder.string() + ": expected " + kSingleFile + " or " + kIndexFile +
                  ", found neither");
  impl->sharded = true;
  impl->index_text = detail::read_text_file(index_path);
  const Json index = detail::parse_json<Json>(impl->index_text, {index_path.string()});
  const auto wm = index.is_object() ? index.find("weight_map") : index.end();
  if (wm == index.end() || !wm->is_object())
    throw ParseError(
        index_path.string(), 0,
        "expected an object with field 'weight_map', found " + std::string(index.type_name()));
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string())
      throw ParseError(index_path.string(), 0,
                       "expected weight_map['" + it.key() + "'] to be a file name, found " +
                           detail::describe_json(it.value()));
    const std::string file = it.value().get<std::string>();
    // A plain file name inside the folder: never let an index point elsewhere.
    if (file.empty() || fs::path(file).filename() != fs::path(file) || file == "." || file == "..")
      throw ParseError(index_path.string(), 0,
                       "expected weight_map['" + it.key() +
                           "'] to be a file name in the folder, found '" + file + "'");
    if (!impl->files.count(file)) impl->files.emplace(file, SafetensorsFile::open(folder / file));
    const SafetensorsFile& f = impl->files.at(file);
    if (!f.contains(it.key()))
      throw ParseError(
          index_path.string(), 0,
          "expected tensor '" + it.key() + "' in " + file + " as weight_map says, found none");
    impl->shard_of[it.key()] = file;
  }
  for (const auto& [file, f] : impl->files)
    for (const std::string& name : f.tensor_names()) {
      const auto it = impl->shard_of.find(name);
      if (it == impl->shard_of.end() || it->second != file)
        throw ParseError::at_byte(
            f.path().string(), static_cast<std::int64_t>(f.info(name).header_offset),
            "expected tensor '" + name + "' to be listed in " + kIndexFile +
                " for this file, found " +
                (it == impl->shard_of.end() ? "no entry" : "it mapped to " + it->second));
    }
  impl->validate();
  return Checkpoint(std::move(impl));
}

const fs::path& Checkpoint::folder() const { return impl_->folder; }
const ModelConfig& Checkpoint::config() const { return impl_->config; }
bool Checkpoint::is_sharded() const { return impl_->sharded; }

std::vector<std::string> Checkpoint::shard_files() const {
  std::vector<std::string> names;
  for (const auto& [name, f] : impl_->files) names.push_back(name);
  return names;
}

std::vector<std::string> Checkpoint::tensor_names() const {
  std::vector<std::string> names;
  names.reserve(impl_->shard_of.size());
  for (const auto& [name, file] : impl_->shard_of) names.push_back(name);
  return names;
}

bool Checkpoint::contains(const std::string& name) const { return impl_->shard_of.count(name); }
const TensorInfo& Checkpoint::info(const std::string& name) const {
  return impl_->file(name).info(name);
}
const std::string& Checkpoint::shard_of(const std::string& name) const {
  return impl_->shard(name);
}
const SafetensorsFile& Checkpoint::file_of(const std::string& name) const {
  return impl_->file(name);
}

Eigen::MatrixXd Checkpoint::read_matrix(const std::string& name, const TensorReadOptions& options,
                                        std::int64_t* num_non_finite) const {
  if (impl_->is_fp8(name))
    return detail::allocation_context(
        "the F64 buffer of FP8 tensor '" + name + "'",
        8.0 * static_cast<double>(info(name).num_elements()),
        [&] { return Eigen::MatrixXd(impl_->read_fp8<double>(name, options, num_non_finite)); });
  return impl_->file(name).read_matrix(name, options, num_non_finite);
}
Eigen::MatrixXf Checkpoint::read_matrix_f32(const std::string& name,
                                            const TensorReadOptions& options,
                                            std::int64_t* num_non_finite) const {
  if (impl_->is_fp8(name))
    return detail::allocation_context(
        "the F32 buffer of FP8 tensor '" + name + "'",
        4.0 * static_cast<double>(info(name).num_elements()),
        [&] { return Eigen::MatrixXf(impl_->read_fp8<float>(name, options, num_non_finite)); });
  return impl_->file(name).read_matrix_f32(name, options, num_non_finite);
}
bool Checkpoint::is_fp8(const std::string& name) const { return impl_->is_fp8(name); }
Eigen::VectorXd Checkpoint::read_vector(const std::string& name, const TensorReadOptions& options,
                                        std::int64_t* num_non_finite) const {
  return impl_->file(name).read_vector(name, options, num_non_finite);
}

void Checkpoint::check_expected_tensors() const { impl_->validate(); }

void write_checkpoint(const Checkpoint& source, const fs::path& out_folder,
                      const CheckpointEdits& edits, const CheckpointWriteOptions& options) {
  const fs::path& in = source.folder();
  {
    const NamedPath output{"write_checkpoint: output folder", out_folder};
    const NamedPath input{"checkpoint", in};
    check_outputs_outside_inputs({}, {&input, 1}, {&output, 1});
  }
  if (edits.config && edits.config_json)
    throw InvalidArgument("write_checkpoint: set edits.config or edits.config_json, not both");
  for (const auto& [name, values] : edits.replace) {
    if (!source.contains(name))
      throw InvalidArgument("write_checkpoint: edits.replace names unknown tensor '" + name + "'");
    if (edits.remove.count(name))
      throw InvalidArgument("write_checkpoint: tensor '" + name + "' is both replaced and removed");
    const std::size_t rank = source.info(name).shape.size();
    if ((rank == 1 && values.cols() != 1) || (rank == 0 && values.size() != 1) || rank > 2)
      throw InvalidArgument("write_checkpoint: replacement for '" + name + "' (rank " +
                            std::to_string(rank) + ") has " + std::to_string(values.rows()) +
                            " x " + std::to_string(values.cols()) + " values");
  }
  for (const auto& [name, dtype] : edits.dtype)
    if (!is_float_dtype(dtype))
      throw InvalidArgument("write_checkpoint: edits.dtype['" + name + "'] is " +
                            dtype_name(dtype) +
                            "; new values are written as F64, F32, F16 or BF16");
  for (const std::string& name : edits.remove)
    if (!source.contains(name))
      throw InvalidArgument("write_checkpoint: edits.remove names unknown tensor '" + name + "'");
  std::set<std::string> renamed_to;
  for (const auto& [from, to] : edits.rename) {
    if (!source.contains(from) || edits.remove.count(from))
      throw InvalidArgument("write_checkpoint: edits.rename names '" + from +
                            "', which is not a tensor of the new checkpoint");
    const bool stays = source.contains(to) && !edits.remove.count(to) && !edits.rename.count(to);
    if (!renamed_to.insert(to).second || stays || edits.add.count(to))
      throw InvalidArgument("write_checkpoint: edits.rename gives two tensors the name '" + to +
                            "'");
  }
  for (const auto& [name, added] : edits.add) {
    if (source.contains(name))
      throw InvalidArgument("write_checkpoint: edits.add names existing tensor '" + name + "'");
    if (!source.contains(added.like) || edits.remove.count(added.like))
      throw InvalidArgument("write_checkpoint: edits.add['" + name + "'].like names '" +
                            added.like + "', which is not a tensor of the new checkpoint");
    if (added.values.size() == 0 && !edits.transform)
      throw InvalidArgument("write_checkpoint: edits.add['" + name +
                            "'] has no values and there is no transform to supply them");
    if (added.shape.size() > 2)
      throw InvalidArgument("write_checkpoint: edits.add['" + name + "'] has rank > 2");
  }
  std::string config_text;
  if (edits.config) config_text = edits.config->to_json();
  if (edits.config_json) {
    (void)ModelConfig::parse(*edits.config_json, "edits.config_json");  // must stay a valid config
    config_text = *edits.config_json;
  }

  if (fs::exists(out_folder)) {
    if (!fs::is_directory(out_folder))
      throw InvalidArgument("write_checkpoint: " + out_folder.string() + " is not a folder");
    if (!options.overwrite && !fs::is_empty(out_folder))
      throw InvalidArgument("write_checkpoint: output folder " + out_folder.string() +
                            " is not empty (set CheckpointWriteOptions::overwrite)");
  } else if (out_folder.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(out_folder.parent_path(), ec);
    if (ec)
      throw IoError(out_folder.parent_path().string() + ": cannot create folder: " + ec.message());
  }
  // Everything is written into a fresh folder beside the target and moved into place at the end
  // (replacing an old checkpoint only then, whole): no stale file of an old output survives, and
  // a failure or an interrupt leaves the old folder as it was.
  AtomicFolder staging(out_folder, options.overwrite);
  const fs::path& out = staging.path();

  // Shards: same assignment of tensors to files, replaced tensors re-encoded in their dtype.
  std::map<std::string, std::string> weight_map;
  std::uint64_t total_size = 0;
  std::set<std::string> handled = {kConfigFile};
  for (const std::string& file : source.shard_files()) {
    handled.insert(file);
    SafetensorsWriter writer;
    const SafetensorsFile* shard = nullptr;
    // Existing tensors of this shard (nullptr: added) and added tensors whose `like` lives here,
    // in name order (the order the writer stores them and the order `transform` is called in).
    // Keyed by the written name: (the source name or "", the added tensor or nullptr).
    std::map<std::string, std::pair<std::string, const CheckpointEdits::NewTensor*>> names;
    for (const std::string& name : source.tensor_names())
      if (source.shard_of(name) == file && !edits.remove.count(name)) {
        const auto to = edits.rename.find(name);
        names[to == edits.rename.end() ? name : to->second] = {name, nullptr};
      }
    for (const auto& [name, added] : edits.add)
      if (source.shard_of(added.like) == file) names[name] = {name, &added};
    for (const auto& [written, entry] : names) {
      const auto& [name, added] = entry;
      throw_if_interrupted("writing the checkpoint");  // per tensor: refits and encoding take time
      weight_map[written] = file;
      const std::string& origin = added != nullptr ? added->like : name;
      shard = &source.file_of(origin);
      const TensorInfo& info = source.info(origin);
      std::optional<Eigen::MatrixXd> values;
      if (const auto rep = edits.replace.find(name); rep != edits.replace.end()) {
        values = rep->second;
      } else if (added != nullptr && added->values.size() > 0) {
        values = added->values;
      } else if (edits.transform) {
        values = edits.transform(name);
      }
      if (!values) {
        if (added != nullptr)
          throw InvalidArgument("write_checkpoint: transform gave no values for added tensor '" +
                                name + "'");
        writer.add_from(*shard, name, written);
        continue;
      }
      std::vector<std::int64_t> shape;
      if (added != nullptr) {
        shape = added->shape;
        if (shape.empty()) {
          shape.push_back(values->rows());
          if (values->cols() != 1) shape.push_back(values->cols());
        }
        std::int64_t count = 1;
        for (std::int64_t d : shape) count *= d;
        if (count != values->size())
          throw InvalidArgument("write_checkpoint: added tensor '" + name + "' has " +
                                std::to_string(values->size()) + " values for shape " +
                                shape_text(shape));
        // Row-major order of the values, as encode_matrix expects for a [rows, cols] tensor.
        if (shape.size() < 2 && values->cols() != 1) values->resize(values->size(), 1);
      } else {
        const std::size_t rank = info.shape.size();
        if ((rank == 1 && values->cols() != 1) || (rank == 0 && values->size() != 1) || rank > 2)
          throw InvalidArgument("write_checkpoint: new values for '" + name + "' (rank " +
                                std::to_string(rank) + ") have " + std::to_string(values->rows()) +
                                " x " + std::to_string(values->cols()) + " entries");
        if (rank >= 1) shape.push_back(values->rows());
        if (rank == 2) shape.push_back(values->cols());
      }
      const auto as = edits.dtype.find(written);
      const Dtype dtype = as != edits.dtype.end() ? as->second : info.dtype;
      writer.add_bytes(written, dtype_name(dtype), std::move(shape),
                       encode_matrix(*values, dtype, name));
    }
    if (shard != nullptr)
      for (const auto& [key, value] : shard->metadata())
        if (key != "format") writer.set_metadata(key, value);
    total_size += writer.data_bytes();
    writer.write(out / file);
  }
  if (source.is_sharded()) {
    handled.insert(kIndexFile);
    Json index = detail::parse_json<Json>(detail::read_text_file(in / kIndexFile),
                                          {(in / kIndexFile).string()});
    index["weight_map"] = weight_map;  // std::map: sorted by tensor name
    if (!index.contains("metadata") || !index["metadata"].is_object())
      index["metadata"] = Json::object();
    index["metadata"]["total_size"] = total_size;
    const std::string text = index.dump(2) + "\n";
    detail::write_file_atomically(out / kIndexFile, [&](std::ostream& stream) { stream << text; });
  }
  if (config_text.empty()) {
    detail::copy_file_atomically(in / kConfigFile, out / kConfigFile);
  } else {
    detail::write_file_atomically(out / kConfigFile,
                                  [&](std::ostream& stream) { stream << config_text; });
  }

  // Every other file (tokenizer, generation_config.json, README, subfolders) byte for byte.
  for (auto it = fs::recursive_directory_iterator(in); it != fs::recursive_directory_iterator();
       ++it) {
    const fs::path rel = fs::relative(it->path(), in);
    if (it->is_directory()) {
      fs::create_directories(out / rel);
      continue;
    }
    if (!it->is_regular_file() || handled.count(rel.string())) continue;
    throw_if_interrupted("copying the checkpoint's other files");
    detail::copy_file_atomically(it->path(), out / rel);
  }
  if (options.before_commit) options.before_commit(out);
  staging.commit();
}

std::int64_t Checkpoint::num_parameters() const {
  std::int64_t total = 0;
  for (const std::string& name : tensor_names()) total += info(name).num_elements();
  return total;
}

}  // namespace qprune
