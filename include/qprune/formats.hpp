// Reading and writing QUBO files. Every format sits behind one registry keyed by name and file
// extension; docs/formats.md gives each format's sign and counting convention.
//
// Paths may name one instance of a multi-instance file as `file.txt#3` (1-based). Files ending in
// `.gz` are decompressed transparently on read.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "include/qprune/formats.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "qprune/qubo_model.hpp"

namespace qprune {

/// What the registry knows about a format.
struct FormatInfo {
  std::string name;                     ///< "qbsolv", "coo", "json", ...
  std::vector<std::string> extensions;  ///< ".qubo", ... (without ".gz")
  bool can_read = false;
  bool can_write = false;
  std::string description;  ///< one line for --help: sense, indexing, what an entry means
};

/// All formats, in the order --help lists them.
[[nodiscard]] const std::vector<FormatInfo>& formats();
/// The format with this name (case-insensitive); throws InvalidArgument listing the names.
[[nodiscard]] const FormatInfo& format_by_name(const std::string& name);
/// The format a path's extension (and, for ambiguous extensions such as ".txt", its first line)
/// implies; throws InvalidArgument when it cannot be told.
[[nodiscard]] std::string detect_format(const std::string& path);

struct ReadOptions {
  std::string format;  ///< empty: detect from the extension/content
  /// Instance of a multi-instance file (1-based); the `#k` suffix of the path overrides it.
  int instance = 1;
  /// Bytes the model a file declares may take (16 per variable at least: its linear term and its
  /// coupling row), checked before allocating; ResourceError when exceeded, so that a small file
  /// declaring 2^30 variables is refused rather than allocated. Default: MemAvailable of
  /// /proc/meminfo at the time of the call.
  std::optional<std::uint64_t> memory_limit_bytes;
  /// Most bytes a gzip-compressed file may inflate to; ResourceError past it (the data is inflated
  /// in chunks, so a small "gzip bomb" is stopped at the limit). Default: the smallest of 4 GiB,
  /// half of MemAvailable, 256x the compressed size (at least 256 MiB) and memory_limit_bytes
  /// when given; the environment variable QPRUNE_MAX_INFLATED_BYTES replaces the first three.
  std::optional<std::uint64_t> max_inflated_bytes;
  /// Throws InvalidArgument naming the field: instance >= 1, format a known name or empty,
  /// memory_limit_bytes and max_inflated_bytes > 0 when given.
  void validate() const;
};

struct WriteOptions {
  std::string format;  ///< empty: from the output path's extension
  /// For formats without constraint groups: add them as a penalty with this weight (default
  /// QuboModel::default_penalty_weight()); the LP format writes them as equalities instead.
  std::optional<double> penalty_weight;
  /// The penalty's shifts, one per group (QuboModel::penalized); empty: the provable ones.
  std::vector<double> penalty_shifts;
  /// Every coefficient and the offset times this (finite, > 0), after any penalty: the file's
  /// energies are `scale` times the model's, and it says so (qprune.energy_scale).
  double scale = 1.0;
  /// Write the Ising (SPIN) form, s = 2x - 1, with the same energy of every state: coo only
  /// (`# vartype=SPIN`, which every COO reader of dimod's kind reads); InvalidArgument otherwise.
  bool spin = false;
  /// The QAOA angles of the qasm format (the qaoa solver's units: exp(-i gamma C / B) with
  /// B = QuboModel::max_flip_change(), exp(-i beta sum X)), one of each per layer; ignored by the
  /// QUBO formats.
  std::vector<double> qaoa_gammas;
  std::vector<double> qaoa_betas;
  /// Digits after the decimal point for non-integer values (integers are written exactly); 17 or
  /// more (the default) writes the shortest text that reads back to the same double.
  int precision = 17;
  /// Throws InvalidArgument naming the field: precision >= 0, penalty_weight finite and >= 0.
  void validate() const;
};

/// The format write_model uses for `path`: `format` when given (checked), else the one its
/// extension names; throws InvalidArgument when it cannot be told or cannot be written.
[[nodiscard]] std::string write_format_for(const std::string& path, const std::string& format = {});
/// Whether a format writes constraint groups as they are (json, lp, lp-linear, mps); the others
/// get them as a penalty (QuboModel::penalized).
[[nodiscard]] bool format_holds_constraints(const std::string& name);

/// Reads a model. Throws IoError if the file cannot be read, ParseError (`path:line: expected
/// ..., found ...`) on malformed content, ResourceError when the declared size exceeds the memory
/// limit (ReadOptions::memory_limit_bytes).
[[nodiscard]] QuboModel read_model(const std::string& path, const ReadOptions& options = {});
/// Writes a model to a temporary file beside `path`, then renames it into place.
void write_model(const QuboModel& model, const std::string& path, const WriteOptions& options = {});

/// The `qprune.key=value` fields a model file carries: the "metadata" object of a JSON file, or
/// the comment lines among its first 64 lines (`#`, `c`, `\\` or `*` comments: every writable text
/// format writes them there). Throws IoError when the file cannot be read. read_model puts them in
/// QuboModel::metadata and write_model writes them back, so convert keeps them.
[[nodiscard]] std::map<std::string, std::string> read_file_metadata(const std::string& path);

/// A solution (answer) file format: qprune's own 0/1 lists and JSON, and the outputs of external
/// solvers (docs/formats.md, "Solution files").
struct SolutionFormatInfo {
  std::string name;         ///< "list", "json", "cbc", "glpk", "highs", ...
  std::string description;  ///< one line for --help
};
/// All solution formats, in the order --help lists them.
[[nodiscard]] const std::vector<SolutionFormatInfo>& solution_formats();
/// The solution format of a file, told from its content; throws InvalidArgument when the content
/// fits none (a 0/1 list is the fallback only for content made of numbers).
[[nodiscard]] std::string detect_solution_format(const std::string& path);

struct SolutionReadOptions {
  std::string format;  ///< empty: detect_solution_format
  /// Throws InvalidArgument listing the names when format is neither empty nor a known name.
  void validate() const;
};

/// Reads an assignment of `model`'s variables. Positional formats (0/1 lists, qbsolv, MQLib, GLPK's
/// column-numbered output) must hold exactly one value per variable (GLPK: columns 1..n, the
/// extra product columns of lp-linear/mps come after them). Named formats (CBC, HiGHS, Gurobi,
/// CPLEX, dimod) name each variable as the model's label, the name the LP/MPS writers give it
/// (x1..xn without labels), or (dimod) its 0-based index; the writers' product columns and
/// offset column (`qp...`) are ignored. Values must be within 1e-6 of 0 or 1 (-1/+1 for spin
/// lists, MQLib Max-Cut and dimod SPIN). CBC lists only non-zero columns, so a variable it does
/// not name is 0; every other format must give every variable once. Throws ParseError
/// `path:line: expected ..., found ...` (unknown or duplicate name, bad value, truncated file).
[[nodiscard]] Assignment read_solution(const std::string& path, const QuboModel& model,
                                       const SolutionReadOptions& options = {});
/// read_solution for a model of `num_variables` unlabelled variables (names x1..xn).
[[nodiscard]] Assignment read_solution(const std::string& path, int num_variables);
/// Writes an assignment as a 0/1 vector, one value per line (temporary file + rename).
void write_solution(const Assignment& x, const std::string& path);

}  // namespace qprune
