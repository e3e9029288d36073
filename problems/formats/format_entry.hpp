// The registry entry of one file format (reader and writer as plain function pointers returning
// owning values) and the helpers the format files share: number text, header notes, sparse
// triple collection with duplicate detection.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "problems/formats/format_entry.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "problems/formats/text_input.hpp"
#include "qprune/error.hpp"
#include "qprune/formats.hpp"
#include "qprune/qubo_model.hpp"

namespace qprune::formats_detail {

/// What a writer gets besides the model.
struct WriteContext {
  int precision = 17;               ///< WriteOptions::precision
  std::vector<std::string> notes;   ///< lines for the header comment (e.g. the penalty note)
  bool spin = false;                ///< WriteOptions::spin (coo only: write_model checks)
  std::vector<double> qaoa_gammas;  ///< WriteOptions::qaoa_gammas (qasm)
  std::vector<double> qaoa_betas;   ///< WriteOptions::qaoa_betas (qasm)
};

/// Reads one model (instance is 1-based; formats with one instance per file get 1).
using Reader = QuboModel (*)(TextInput& input, int instance);
/// Appends the file text for `model` to `out`.
using Writer = void (*)(const QuboModel& model, const WriteContext& context, std::string& out);

struct FormatEntry {
  FormatInfo info;
  Reader read = nullptr;
  Writer write = nullptr;
  bool holds_constraints = false;  ///< writer keeps constraint groups (else they become a penalty)
  bool multi_instance = false;     ///< `file#k` picks instance k
};

// One function per format file.
[[nodiscard]] FormatEntry qbsolv_format();
[[nodiscard]] FormatEntry coo_format();
[[nodiscard]] FormatEntry json_format();
[[nodiscard]] FormatEntry mqlib_format();
[[nodiscard]] FormatEntry maxcut_format();
[[nodiscard]] FormatEntry beasley_format();
[[nodiscard]] FormatEntry biqmac_format();
[[nodiscard]] FormatEntry matrix_market_format();
[[nodiscard]] FormatEntry qasm_format();
[[nodiscard]] FormatEntry qplib_format();
[[nodiscard]] FormatEntry lp_format();
[[nodiscard]] FormatEntry lp_linear_format();
[[nodiscard]] FormatEntry mps_format();

/// The column names the LP and MPS writers give the variables: x1..xn (1-based) without labels,
/// else the labels made safe for LP readers (mip_formats.cpp says how).
[[nodiscard]] std::vector<std::string> lp_names(const QuboModel& model);
/// The prefix of the product columns (and of the offset column, prefix + "one") of lp-linear and
/// mps: "qp", lengthened with '_' until no variable name starts with it.
[[nodiscard]] std::string lp_product_prefix(const std::vector<std::string>& names);

/// A number as text: integers exactly without a decimal point; others the shortest text that reads
/// back to the same double (precision >= 17) or rounded to `precision` digits after the point.
/// `plain` forbids exponents (dimod's COO regex skips them).
[[nodiscard]] std::string number_text(double value, int precision, bool plain = false);

/// Refuses, before anything of that size is allocated, a model of `n` variables (declared in the
/// file or implied by its largest index) whose kBytesPerVariable * n bytes exceed the input's
/// memory limit: ResourceError naming the file and the count. Range checks stay with each format.
void check_model_memory(const TextInput& in, std::int64_t n);
/// The least a model holds per variable: a linear term and a coupling row start, 8 bytes each.
inline constexpr double kBytesPerVariable = 16.0;

/// Declared sizes must be plausible for the file, so that a 26-byte header cannot make the reader
/// allocate and loop over 10^8 variables. A file may declare (or imply by its largest index)
/// kFreeVariables variables, plus kVariablesPerByte per byte of its (inflated) text; sparse files
/// with many unused variables stay readable, and the work is bounded by the data present.
inline constexpr std::int64_t kFreeVariables = std::int64_t{1} << 20;
inline constexpr std::int64_t kVariablesPerByte = 16;
/// An entry `i j v` takes at least 6 bytes ("1 2 3" and a separator), an entry `i v` 4: a
/// declared count of entries beyond kFreeEntries + (text bytes + 1) / that cannot be present.
/// (The slack keeps the precise "expected m entry lines, not k" message for a small miscount.)
inline constexpr std::int64_t kMinBytesPerEntry = 6;
inline constexpr std::int64_t kFreeEntries = 4096;

/// The most variables `in` may declare: kFreeVariables + kVariablesPerByte * its text bytes.
[[nodiscard]] std::int64_t max_plausible_variables(const TextInput& in);
/// Refuses a declared variable count `n` (the text `token` at the current line, described by
/// `what`) above max_plausible_variables(in) with a ParseError "expected <what> at most N for a
/// file of S bytes ..., found '<token>'". Memory is still checked with check_model_memory.
void check_declared_variables(const TextInput& in, std::int64_t n, const std::string& what,
                              std::string_view token);
/// Refuses a declared count of entries that the text cannot hold (more than kFreeEntries +
/// (bytes + 1) / min_entry_bytes) with a ParseError at the current line naming `token`.
void check_declared_entries(const TextInput& in, std::int64_t count, const std::string& what,
                            std::string_view token,
                            std::int64_t min_entry_bytes = kMinBytesPerEntry);

/// Whether the triplet formats try their bulk fast path first (default true). Tests and the parse
/// benchmark switch it off to run the line-by-line readers alone, on the same files.
void set_fast_readers(bool enabled);
[[nodiscard]] bool fast_readers();
/// How many files the fast paths have read so far (tests check that a plain file took it).
[[nodiscard]] std::int64_t fast_reads();
void count_fast_read();

/// A reader in two parts: `fast(in)` reads a file in its plain form in bulk and gives
/// std::nullopt (or throws a qprune::Error) for anything else; then `checked(in)`, the
/// line-by-line reader whose errors name the line and what was expected, reads it again from the
/// start. So every error message comes from one reader, and a clean file is read once, fast.
template <class Fast, class Checked>
[[nodiscard]] QuboModel read_fast_or_checked(TextInput& in, Fast&& fast, Checked&& checked) {
  if (fast_readers()) {
    try {
      if (std::optional<QuboModel> model = fast(in)) {
        count_fast_read();
        return std::move(*model);
      }
    } catch (const Error&) {
      // Reported, with its line, by the checked reader below.
    }
    in.rewind();
  }
  return checked(in);
}

/// ASCII lower case (format names, keywords, QPLIB senses, Matrix Market banners).
[[nodiscard]] std::string lower_case(std::string_view text);

/// The body of a checked `i j v` reader (biqmac, mtx) after its header: a diagonal entry sets
/// c_i = v (once per variable); an off-diagonal one adds pair_scale v to q_ij, once per pair, or
/// with `ordered` once per (i, j) so that (i, j) and (j, i) both count. Fails naming the line.
void read_triplet_body(TextInput& in, HeadedTripletLines& lines, Eigen::VectorXd& c,
                       std::vector<Coupling>& q, double pair_scale, bool ordered = false);

/// Key of an unordered pair (i != j) for duplicate detection.
[[nodiscard]] inline std::uint64_t pair_key(int i, int j) {
  if (i > j) std::swap(i, j);
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(i)) << 32) |
         static_cast<std::uint32_t>(j);
}

/// Value of `key=value` in a comment body such as "# offset=1.5" (prefix characters stripped);
/// empty when the comment is not of that form.
[[nodiscard]] std::string_view comment_value(std::string_view comment, std::string_view key);

/// The `qprune.key=value` fields in the comment lines among the first 64 lines of a text (after a
/// `#`, `\\`, `*` or `c ` comment marker): export's metadata, as every text writer puts it.
[[nodiscard]] std::map<std::string, std::string> header_metadata(std::string_view text);

/// Writes `content` through qprune::AtomicFile (qprune/atomic_output.hpp); a path ending in ".gz"
/// is written gzip-compressed. Throws IoError.
void write_file_atomically(const std::string& path, const std::string& content);

/// `path` without a trailing `#k` instance suffix (when the full name is not itself a file), and k.
struct InstancePath {
  std::string file;
  int instance = 0;  ///< 0: no suffix
};
[[nodiscard]] InstancePath split_instance(const std::string& path);

}  // namespace qprune::formats_detail
