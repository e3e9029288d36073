// Checkpoint I/O: safetensors files (validated as strictly as the reference implementation
// huggingface/safetensors; tensor bytes copied out with bounds-checked reads, so a file truncated
// while open is an IoError, never a crash), the Hugging Face folder layout (config.json + one file
// or index-sharded files, every tensor checked against config.json when opened), and writing a new
// checkpoint folder.
//
// Layout convention: a tensor of shape [rows, cols] in the file (row-major, C order, little endian)
// is read as an Eigen matrix M with M(i, j) = element i * cols + j, whatever Eigen's own storage
// order. A 2-D weight of an nn.Linear is therefore out_features x in_features, as in PyTorch. A 1-D
// tensor [n] is read as an n x 1 matrix (or a vector with read_vector); a 0-D tensor as 1 x 1.
//
// Example:
//   Checkpoint ckpt = Checkpoint::open("models/tiny-llama");
//   for (const std::string& name : ckpt.tensor_names()) std::cout << name << "\n";
//   Eigen::MatrixXf w = ckpt.read_matrix_f32("model.layers.0.mlp.down_proj.weight");  // [H, I]
//   CheckpointEdits edits;
//   edits.replace["model.layers.0.mlp.down_proj.weight"] = w.leftCols(8).cast<double>();
//   ModelConfig cfg = ckpt.config();  ...  edits.config = cfg;
//   write_checkpoint(ckpt, "models/tiny-llama-pruned", edits);
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "include/qprune/checkpoint.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "qprune/model_config.hpp"

namespace qprune {

// ---------------------------------------------------------------------------------------------
// Element types

/// The safetensors dtypes qprune knows the size of. kUnknown: a dtype string qprune cannot size
/// (its tensors can be listed and carried through byte-exact, but not converted).
enum class Dtype {
  kF64,
  kF32,
  kF16,
  kBF16,
  kI64,
  kI32,
  kI16,
  kI8,
  kU8,
  kBool,
  kU64,
  kU32,
  kU16,
  kF8E4M3,
  kF8E5M2,
  kUnknown
};

/// The dtype with this safetensors name ("F32", "BF16", "F8_E4M3", ...); kUnknown otherwise.
[[nodiscard]] Dtype dtype_from_name(const std::string& name);
/// The safetensors name of a known dtype ("F32", ...); "?" for kUnknown.
[[nodiscard]] const char* dtype_name(Dtype dtype);
/// Bytes per element; 0 for kUnknown.
[[nodiscard]] std::size_t dtype_size(Dtype dtype);
/// F64, F32, F16 or BF16: the dtypes read_matrix converts from and write converts to.
[[nodiscard]] bool is_float_dtype(Dtype dtype);

/// bfloat16 bits -> float (exact: the bits are the upper half of an IEEE binary32).
[[nodiscard]] float bf16_to_float(std::uint16_t bits);
/// double -> bfloat16 bits, rounded to nearest, ties to even, in one step (no double rounding
/// through float); overflow gives +-inf, NaN gives a quiet NaN of the same sign.
[[nodiscard]] std::uint16_t float_to_bf16(double value);
/// IEEE binary16 bits -> float (exact, subnormals, inf and NaN included).
[[nodiscard]] float f16_to_float(std::uint16_t bits);
/// double -> IEEE binary16 bits, round to nearest, ties to even; |value| >= 65520 gives +-inf.
[[nodiscard]] std::uint16_t float_to_f16(double value);
/// OCP FP8 E4M3FN bits (safetensors F8_E4M3: 1 sign, 4 exponent bits with bias 7, 3 mantissa
/// bits, no infinities) -> float, exact: subnormals m/8 * 2^-6, largest finite 0x7E = 448,
/// 0x7F and 0xFF are NaN.
[[nodiscard]] float f8_e4m3_to_float(std::uint8_t bits);

// ---------------------------------------------------------------------------------------------
// One safetensors file

/// One tensor entry of a safetensors header.
struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::kUnknown;
  std::string dtype_text;           ///< the dtype as written in the header (kept for kUnknown)
  std::vector<std::int64_t> shape;  ///< row-major, as in the file
  std::uint64_t data_begin = 0;     ///< offsets relative to the data area, as in the header
  std::uint64_t data_end = 0;
  std::uint64_t file_offset = 0;    ///< absolute byte offset of the first element in the file
  std::uint64_t header_offset = 0;  ///< absolute byte offset of the tensor's key in the header

  [[nodiscard]] std::uint64_t num_bytes() const { return data_end - data_begin; }
  /// prod(shape) (1 for a 0-D tensor).
  [[nodiscard]] std::int64_t num_elements() const;
};

/// What to do with NaN/Inf in a tensor that is read as numbers.
enum class NonFinitePolicy {
  kError,  ///< throw ParseError naming the tensor, the element and its byte offset (default)
  kZero,   ///< replace by 0 and count them (see the `num_non_finite` output of read_matrix)
};

struct TensorReadOptions {
  NonFinitePolicy non_finite = NonFinitePolicy::kError;  ///< default: NaN/Inf is an error
};

namespace detail {
class ReadOnlyFile;
}  // namespace detail

/// A safetensors file opened read-only. open() reads and validates the header only; a tensor's
/// bytes are read from the file (pread, no memory map) when it is read, into memory the caller
/// owns. Every read checks its byte count: a file truncated after open() gives an IoError naming
/// the file and the tensor. The object is movable, not copyable, and keeps the file open.
class SafetensorsFile {
 public:
  /// Largest header accepted, as the reference implementation: 100,000,000 bytes.
  static constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

  /// Opens and validates `path`: 8-byte little-endian header length N, N <= kMaxHeaderBytes and
  /// N <= file size - 8, a JSON object header; per tensor dtype, shape, data_offsets [begin, end];
  /// `__metadata__` string -> string; byte size == prod(shape) * element size (overflow checked)
  /// for known dtypes; offsets tiling the data area exactly in order of begin (no gap, overlap or
  /// trailing byte). Throws IoError if the file cannot be opened or read, and ParseError
  /// (`path: byte N: expected ..., found ...`) for every violation.
  [[nodiscard]] static SafetensorsFile open(const std::filesystem::path& path);

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  ~SafetensorsFile();

  [[nodiscard]] const std::filesystem::path& path() const;
  /// Tensor names, sorted.
  [[nodiscard]] std::vector<std::string> tensor_names() const;
  [[nodiscard]] bool contains(const std::string& name) const;
  /// Throws InvalidArgument if there is no such tensor.
  [[nodiscard]] const TensorInfo& info(const std::string& name) const;
  /// The header's `__metadata__` (empty if absent).
  [[nodiscard]] const std::map<std::string, std::string>& metadata() const;
  /// Size of the header JSON (N) and of the whole file, in bytes.
  [[nodiscard]] std::uint64_t header_bytes() const;
  [[nodiscard]] std::uint64_t file_bytes() const;

  /// A copy of the tensor's raw bytes (any dtype, no conversion). IoError if the file was
  /// truncated since open().
  [[nodiscard]] std::vector<std::byte> raw_bytes(const std::string& name) const;
  /// Copies bytes [offset, offset + out.size()) of the tensor's data into `out`: InvalidArgument
  /// beyond the tensor's end, IoError if the file was truncated since open().
  void read_raw(const std::string& name, std::uint64_t offset, std::span<std::byte> out) const;
  /// The tensor as doubles (F64/F32/F16/BF16, converted exactly). Rank 2 -> rows x cols, rank 1 ->
  /// n x 1, rank 0 -> 1 x 1; rank > 2 and non-float dtypes throw InvalidArgument; NaN/Inf follow
  /// `options` (ParseError by default). `num_non_finite`, if given, receives how many were zeroed.
  [[nodiscard]] Eigen::MatrixXd read_matrix(const std::string& name,
                                            const TensorReadOptions& options = {},
                                            std::int64_t* num_non_finite = nullptr) const;
  /// As read_matrix, as floats (F64 values are rounded to nearest float).
  [[nodiscard]] Eigen::MatrixXf read_matrix_f32(const std::string& name,
                                                const TensorReadOptions& options = {},
                                                std::int64_t* num_non_finite = nullptr) const;
  /// A rank-1 tensor as a vector (InvalidArgument for other ranks).
  [[nodiscard]] Eigen::VectorXd read_vector(const std::string& name,
                                            const TensorReadOptions& options = {},
                                            std::int64_t* num_non_finite = nullptr) const;

 private:
  friend class SafetensorsWriter;  // add_from shares the open file
  struct Impl;
  explicit SafetensorsFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Encodes values into the bytes of a float dtype (row-major, little endian), F16/BF16 rounded to
/// nearest even. Throws InvalidArgument for a non-float dtype, a NaN/Inf value, or a finite value
/// that would overflow the dtype (`tensor` names the tensor in that message).
[[nodiscard]] std::vector<std::byte> encode_matrix(const Eigen::MatrixXd& values, Dtype dtype,
                                                   const std::string& tensor = "");

/// Builds a safetensors file: add tensors, then write(). The header lists `__metadata__` first
/// (with "format": "pt"), then the tensors sorted by name; data follows in the same order. The
/// header is padded with spaces to a multiple of 8 bytes, as the reference writer does.
class SafetensorsWriter {
 public:
  /// A tensor from values, stored as `dtype` (a float dtype). `shape` empty: [rows, cols] for a
  /// matrix with more than one column, [rows] for a single column; otherwise its product must
  /// equal the number of values (taken row-major).
  void add_matrix(const std::string& name, Dtype dtype, const Eigen::MatrixXd& values,
                  std::vector<std::int64_t> shape = {});
  /// A tensor from raw bytes of any dtype (`dtype_text` as in the header, e.g. "F8_E4M3"); the
  /// byte count is checked against the shape when the dtype's size is known.
  void add_bytes(const std::string& name, const std::string& dtype_text,
                 std::vector<std::int64_t> shape, std::vector<std::byte> bytes);
  /// A tensor carried through unchanged from an open file (bytes copied from the file at write()
  /// time, in bounded chunks; the writer keeps the file open, so `source` itself may go away).
  void add_from(const SafetensorsFile& source, const std::string& source_name,
                const std::string& name = "");
  /// Adds a `__metadata__` entry ("format" is always "pt").
  void set_metadata(const std::string& key, const std::string& value);
  [[nodiscard]] std::size_t num_tensors() const { return entries_.size(); }
  /// Sum of the tensors' byte sizes.
  [[nodiscard]] std::uint64_t data_bytes() const;

  /// Writes to a temporary file in the target folder, then renames it to `path`. Throws IoError.
  void write(const std::filesystem::path& path) const;

 private:
  struct Entry {
    std::string dtype_text;
    std::vector<std::int64_t> shape;
    std::vector<std::byte> owned;  // used when `source` is null
    // add_from: the source file, where the tensor's bytes start and how many there are.
    std::shared_ptr<const detail::ReadOnlyFile> source;
    std::string source_name;
    std::uint64_t source_offset = 0;
    std::uint64_t source_bytes = 0;
    [[nodiscard]] std::uint64_t num_bytes() const { return source ? source_bytes : owned.size(); }
  };
  void add_entry(const std::string& name, Entry entry);
  std::map<std::string, Entry> entries_;  // sorted by name: the file order
  std::map<std::string, std::string> metadata_{{"format", "pt"}};
};

// ---------------------------------------------------------------------------------------------
// A Hugging Face checkpoint folder

/// A checkpoint folder: config.json plus model.safetensors, or model-0000i-of-0000N.safetensors
/// shards listed by model.safetensors.index.json. Opened lazily: config, index and every shard's
/// header are read and validated, and every tensor is checked against config.json (see open());
/// tensor bytes are read from the files on demand. The input folder is never modified.
class Checkpoint {
 public:
  /// Opens a folder and validates it, once, before any tensor is read: every command can then
  /// trust the tensor shapes. Throws IoError (missing folder/files), ParseError (malformed config,
  /// index or shard; a shard shorter than its header says; a tensor the index names but its shard
  /// lacks, or the reverse; a tensor in two shards) and ParseError for tensors that disagree with
  /// config.json: a `model.layers.` name without a decimal layer number below num_hidden_layers;
  /// a tensor of known_layer_tensors / known_global_tensors whose shape differs from the config's
  /// (message: the shard, the tensor's header byte, expected and found shape) or whose dtype is not
  /// a float; a required tensor that is missing (naming it and the layers that lack tensors).
  /// Tensors the config does not describe are allowed (and carried through by write_checkpoint).
  /// With an FP8 quantization_config (ModelConfig::fp8) a known tensor may be F8_E4M3, and every
  /// F8_E4M3 tensor must be 2-D with its `<name>_scale_inv` (missing, a wrong shape or a non-float
  /// dtype: ParseError naming the scale tensor and the shape expected); without one, an F8_E4M3
  /// tensor of a known name is refused like any non-float dtype. DeepSeek-V3's MTP layers
  /// (model.layers.<num_hidden_layers + i>, i < num_nextn_predict_layers) are allowed: their
  /// decoder-layer tensors are shape-checked, none is required.
  [[nodiscard]] static Checkpoint open(const std::filesystem::path& folder);

  Checkpoint(Checkpoint&&) noexcept;
  Checkpoint& operator=(Checkpoint&&) noexcept;
  ~Checkpoint();

  [[nodiscard]] const std::filesystem::path& folder() const;
  [[nodiscard]] const ModelConfig& config() const;
  /// True when the weights are split over shards listed by model.safetensors.index.json.
  [[nodiscard]] bool is_sharded() const;
  /// Shard file names (just "model.safetensors" when not sharded), sorted.
  [[nodiscard]] std::vector<std::string> shard_files() const;
  /// Every tensor name, sorted.
  [[nodiscard]] std::vector<std::string> tensor_names() const;
  [[nodiscard]] bool contains(const std::string& name) const;
  /// Throws InvalidArgument if there is no such tensor.
  [[nodiscard]] const TensorInfo& info(const std::string& name) const;
  /// The shard file name holding the tensor.
  [[nodiscard]] const std::string& shard_of(const std::string& name) const;
  /// The open shard holding the tensor (for raw access).
  [[nodiscard]] const SafetensorsFile& file_of(const std::string& name) const;

  /// See SafetensorsFile::read_matrix / read_matrix_f32 / read_vector. A block-wise FP8 tensor
  /// (is_fp8) is dequantised by its scale tensor as it is read (Fp8Quantization in
  /// model_config.hpp), rows streamed through a bounded buffer; a NaN code (0x7F, 0xFF) or an
  /// overflowing product follows `options` like any non-finite value.
  [[nodiscard]] Eigen::MatrixXd read_matrix(const std::string& name,
                                            const TensorReadOptions& options = {},
                                            std::int64_t* num_non_finite = nullptr) const;
  [[nodiscard]] Eigen::MatrixXf read_matrix_f32(const std::string& name,
                                                const TensorReadOptions& options = {},
                                                std::int64_t* num_non_finite = nullptr) const;
  [[nodiscard]] Eigen::VectorXd read_vector(const std::string& name,
                                            const TensorReadOptions& options = {},
                                            std::int64_t* num_non_finite = nullptr) const;

  /// True for an F8_E4M3 tensor of a checkpoint whose config.json has an FP8
  /// quantization_config: open() checked its `<name>_scale_inv` companion (present, float, of
  /// shape [ceil(rows / block_rows), ceil(cols / block_cols)]).
  [[nodiscard]] bool is_fp8(const std::string& name) const;

  /// The validation open() ran (see there), again: a no-op on an open checkpoint; kept for
  /// callers that state the precondition.
  void check_expected_tensors() const;

  /// Elements of every tensor (the parameter count as a loader sees it).
  [[nodiscard]] std::int64_t num_parameters() const;

 private:
  struct Impl;
  explicit Checkpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// What write_checkpoint changes. Tensors not named here are carried through byte for byte.
struct CheckpointEdits {
  /// New values for existing tensors, written in the tensor's original dtype (F16/BF16 rounded to
  /// nearest even) and its original rank: rank 2 takes the matrix's rows x cols (so a pruned weight
  /// may shrink), rank 1 needs a single column, rank 0 a 1 x 1 matrix.
  std::map<std::string, Eigen::MatrixXd> replace;
  /// Tensors to leave out of the new checkpoint.
  std::set<std::string> remove;
  /// Tensors written under another name (old -> new), e.g. experts renumbered after some are
  /// removed; `replace` and `transform` still see the old name. A new name must not be the name of
  /// a tensor that stays under its own name, nor the target of two renames.
  std::map<std::string, std::string> rename;
  /// A new tensor: stored in the shard of `like` (an existing tensor of the source, e.g. the
  /// layer's down_proj.weight) with `like`'s dtype; `shape` gives its rank and dims (empty: the
  /// values' rows x cols, or [rows] for one column). `values` may be left empty when `transform`
  /// supplies them at write time.
  struct NewTensor {
    std::string like;
    std::vector<std::int64_t> shape;
    Eigen::MatrixXd values;
  };
  /// Tensors to add (name -> tensor); a name that already exists is InvalidArgument. They also go
  /// into the index's weight_map.
  std::map<std::string, NewTensor> add;
  /// Optional lazy edit, called at write time for every written tensor not in `replace` (and for
  /// every `add` entry without values), one shard at a time in name order: returns new values
  /// (same rules as `replace`) or nullopt to keep the tensor as it is. Lets a caller edit a model
  /// one layer at a time instead of holding every replacement in memory at once.
  std::function<std::optional<Eigen::MatrixXd>(const std::string& name)> transform;
  /// The dtype a tensor given new values (replace, add, transform) is written in, by written
  /// name; absent: the source tensor's (or `like`'s) own. A float dtype: block-wise FP8 weights
  /// that are sliced are written dequantised, e.g. as BF16 (their scale then goes in `remove`).
  std::map<std::string, Dtype> dtype;
  /// The new config.json: either a ModelConfig (written with to_json(), other keys kept) or the
  /// full JSON text; neither: config.json is copied unchanged. Both set: InvalidArgument.
  std::optional<ModelConfig> config;
  std::optional<std::string> config_json;
};

struct CheckpointWriteOptions {
  /// Allow replacing an existing non-empty folder. The new checkpoint is always written into a
  /// fresh folder beside the target and moved into place at the end, replacing the old folder as
  /// a whole (no old file survives). Default false: the output folder must not exist or be empty.
  bool overwrite = false;
  /// Called with the complete new folder just before it is moved into place (e.g. to read it
  /// back: after the move, another writer may already have replaced the target).
  std::function<void(const std::filesystem::path&)> before_commit;
};

/// Writes a new checkpoint folder `out_folder`: each shard rewritten with the same tensors as in
/// `source` (same shard assignment, minus removed ones, replaced ones re-encoded), the index with
/// the new metadata.total_size (sum of tensor bytes, as Transformers computes it) and other index
/// keys kept, config.json as `edits` say, and every other file and folder of the source (tokenizer,
/// generation_config.json, README, ...) copied byte for byte. The folder is written through an
/// AtomicFolder (qprune/atomic_output.hpp): readers see the old folder or the complete new one.
/// Polls the interrupt flag (qprune/interrupt.hpp) per tensor and throws Interrupted, leaving the
/// old folder untouched. Throws InvalidArgument if `out_folder` is the source folder
/// or inside it, if it is non-empty without `overwrite`, or for an edit naming a tensor that does
/// not exist / a replacement with the wrong rank; IoError on write failures.
void write_checkpoint(const Checkpoint& source, const std::filesystem::path& out_folder,
                      const CheckpointEdits& edits = {},
                      const CheckpointWriteOptions& options = {});

}  // namespace qprune
