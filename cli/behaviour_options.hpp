// The behaviour-contrast options shared by `qprune mask` and `qprune export`
// (docs/pruning_math.md section 11): --preserve B.stats with --suppress A.stats or
// --protect A.stats, and --behaviour-weight LAMBDA. The mode gives lambda its sign in the
// objective E(x) = err_B(x) - lambda' err_A(x): suppress +lambda, protect -lambda.
#pragma once
#ifdef QPRUNE_LAYER
#error "cli/behaviour_options.hpp is part of the cli program; no library layer may include it"
#endif

#include <CLI/CLI.hpp>
#include <cmath>
#include <string>

#include "qprune/behaviour_contrast.hpp"
#include "qprune/error.hpp"

namespace qprune::cli {

struct BehaviourChoice {
  std::string preserve;  ///< B: the statistics of the text whose behaviour is kept
  std::string suppress;  ///< A to suppress
  std::string protect;   ///< A to protect
  double weight = 1.0;   ///< lambda > 0 (relative-error scale: 1 = equal weight)
  bool weight_given = false;

  [[nodiscard]] bool active() const { return !suppress.empty() || !protect.empty(); }
  [[nodiscard]] bool protect_mode() const { return !protect.empty(); }
  [[nodiscard]] const std::string& contrast() const { return protect.empty() ? suppress : protect; }
  /// The objective's lambda: + for suppress, - for protect, 0 without a contrast.
  [[nodiscard]] double signed_weight() const {
    return !active() ? 0.0 : protect_mode() ? -weight : weight;
  }
  /// Throws InvalidArgument for combinations that make no sense (exit 2).
  void check(const std::string& calib) const {
    if (!suppress.empty() && !protect.empty())
      throw InvalidArgument("give --suppress or --protect, not both");
    if (!active()) {
      if (!preserve.empty())
        throw InvalidArgument(
            "--preserve needs --suppress A.stats or --protect A.stats (for one "
            "statistics file use --calib)");
      if (weight_given) throw InvalidArgument("--behaviour-weight needs --suppress or --protect");
      return;
    }
    if (!calib.empty())
      throw InvalidArgument(
          "with --suppress/--protect the preserved set is --preserve B.stats, "
          "not --calib");
    if (preserve.empty())
      throw InvalidArgument(std::string(protect_mode() ? "--protect" : "--suppress") +
                            " needs the preserved set's statistics: --preserve B.stats");
    if (!std::isfinite(weight) || weight <= 0.0 || weight > kMaxBehaviourWeight)
      throw InvalidArgument("--behaviour-weight must be in (0, 100], is " + std::to_string(weight) +
                            " (the mode gives the sign; above 100 B's term is under 1 % of A's: "
                            "docs/pruning_math.md 11.4)");
  }
};

inline void add_behaviour_options(CLI::App& sub, BehaviourChoice& b) {
  sub.add_option("--preserve", b.preserve,
                 "behaviour contrast: statistics of the text set B whose behaviour is kept (with "
                 "--suppress or --protect; replaces --calib)");
  sub.add_option("--suppress", b.suppress,
                 "behaviour contrast: statistics of the text set A to damage; each layer "
                 "minimises err_B - lambda (N_B/N_A) err_A (docs/pruning_math.md section 11)");
  sub.add_option("--protect", b.protect,
                 "behaviour contrast: statistics of a text set A to keep as well (a capability "
                 "--preserve under-represents): err_B + lambda (N_B/N_A) err_A");
  sub.add_option_function<double>(
      "--behaviour-weight",
      [&b](double v) {
        b.weight = v;
        b.weight_given = true;
      },
      "lambda in (0, 100]: 1 weighs a relative error on A as much as the same relative error on "
      "B (default 1)");
}

}  // namespace qprune::cli
