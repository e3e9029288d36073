// The registry entry of one solution (answer) file format, like format_entry.hpp's for models: a
// content test for detection and a reader, both plain functions, and what the readers share: the
// map from the names a file may use to the model's variables, and the checks of a 0/1 value.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "problems/formats/solution_entry.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "problems/formats/text_input.hpp"
#include "qprune/formats.hpp"
#include "qprune/qubo_model.hpp"

namespace qprune::formats_detail {

/// What a solution file is read onto: the number of variables and the names it may give them.
/// The name index is built on the first lookup (positional formats never need it) and, for a
/// model without labels, not at all: x<i> is parsed.
class SolutionTarget {
 public:
  /// Names: without labels x1..xn; with labels each label and its LP/MPS name (lp_names). The
  /// model must outlive the target.
  explicit SolutionTarget(const QuboModel& model);
  /// n unlabelled variables (x1..xn).
  explicit SolutionTarget(int num_variables);

  [[nodiscard]] int num_variables() const { return n_; }
  /// The variable `name` stands for; -1 for a column the linearised writers add (product
  /// columns and the offset column, which start with the product prefix); fails naming the line
  /// for any other name.
  [[nodiscard]] int variable(const TextInput& in, std::int64_t line, std::string_view name) const;
  /// The name the LP writers gave variable i, for messages.
  [[nodiscard]] std::string name(int i) const;

 private:
  void build_index() const;
  int n_ = 0;
  const QuboModel* labelled_ = nullptr;  // set when the model has labels
  mutable bool indexed_ = false;
  mutable std::vector<std::string> names_;  // lp_names of a labelled model
  mutable std::unordered_map<std::string, int> index_;
  mutable std::string product_prefix_ = "qp";  // no x<i> starts with it
};

/// Collects one value per variable, refusing duplicates; finish() refuses missing ones (dense
/// formats) or sets them to 0 (sparse formats: CBC lists only non-zero columns).
class SolutionValues {
 public:
  explicit SolutionValues(const SolutionTarget& target);
  /// Sets variable i from the value text `token` at `line` (within 1e-6 of 0 or 1; with `spin`,
  /// of -1 or +1); fails for another value or a second value of the same variable.
  void set(const TextInput& in, std::int64_t line, int i, std::string_view token,
           bool spin = false);
  /// The assignment; when `sparse` is false, fails at `line` naming the first variable not set.
  [[nodiscard]] Assignment finish(const TextInput& in, std::int64_t line, bool sparse) const;

 private:
  const SolutionTarget& target_;
  Assignment x_;
  std::vector<std::int64_t> set_at_;  // line of each value, 0 when not given
};

/// A positional list of values (0/1, or -1/+1 when `spin`) from `tokens`, exactly n of them.
struct PositionalToken {
  std::string_view text;
  std::int64_t line;
};
[[nodiscard]] Assignment positional_values(const TextInput& in,
                                           const std::vector<PositionalToken>& tokens, int n,
                                           bool spin);

/// Reads a whole file onto the target.
using SolutionReader = Assignment (*)(TextInput& in, const SolutionTarget& target);
/// Whether the text is, unambiguously, in this format.
using SolutionDetector = bool (*)(std::string_view text);

struct SolutionFormatEntry {
  SolutionFormatInfo info;
  SolutionDetector detect = nullptr;  ///< nullptr: never detected (only chosen by name)
  SolutionReader read = nullptr;
};

// One function per format (solution_io.cpp: list, json; solver_outputs.cpp: the others).
[[nodiscard]] SolutionFormatEntry list_solution_format();
[[nodiscard]] SolutionFormatEntry json_solution_format();
[[nodiscard]] SolutionFormatEntry cbc_solution_format();
[[nodiscard]] SolutionFormatEntry glpk_solution_format();
[[nodiscard]] SolutionFormatEntry highs_solution_format();
[[nodiscard]] SolutionFormatEntry gurobi_solution_format();
[[nodiscard]] SolutionFormatEntry cplex_solution_format();
[[nodiscard]] SolutionFormatEntry qbsolv_solution_format();
[[nodiscard]] SolutionFormatEntry mqlib_solution_format();
[[nodiscard]] SolutionFormatEntry dimod_solution_format();

/// The first line of `text` that is not blank, trimmed ("" when none).
[[nodiscard]] std::string_view first_content_line(std::string_view text);

}  // namespace qprune::formats_detail
