// The one progress line of the subcommands that work for a while (calibrate, perplexity, solve):
// a line on stderr that overwrites itself, printed at most ten times a second, and the formatting
// of a solver's SolveOptions::progress reports into it.
#pragma once
#ifdef QPRUNE_LAYER
#error "cli/progress_line.hpp is part of the cli program; no library layer may include it"
#endif

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

#include "qprune/solver.hpp"

namespace qprune::cli {

/// Measures from construction and shows "`what`: text" on stderr, overwriting the line. A text
/// shown less than kInterval_s after construction or after the previous print is kept back unless
/// forced (the latest one is printed by finish() once a line was started), so fast work prints
/// nothing and slow work about ten lines a second.
class ProgressLine {
 public:
  static constexpr double kInterval_s = 0.1;
  explicit ProgressLine(std::string what) : what_(std::move(what)) {}
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;
  ~ProgressLine() { finish(); }

  /// Seconds since construction.
  [[nodiscard]] double seconds() const;
  /// Shows `text` now or keeps it for later (see the class comment); `force`: now. Not
  /// thread-safe.
  void show(std::string text, bool force = false);
  /// Whether show() would print now (lets a caller skip formatting a text that would wait).
  [[nodiscard]] bool due() const { return seconds() - last_print_s_ >= kInterval_s; }
  /// Prints the text kept back, if a line was already started, and ends the line. Idempotent.
  void finish();

 private:
  void print(const std::string& text);

  std::string what_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  double last_print_s_ = 0.0;
  std::size_t last_width_ = 0;  // printed characters of the current line; 0: none printed
  std::string pending_;
};

/// True when stderr is a terminal (progress lines are for people, not for log files).
[[nodiscard]] bool stderr_is_terminal();

/// A SolveOptions::progress callback showing "stage done/total (p%), best E, <C> c, s s" on
/// `line`, which must outlive it.
[[nodiscard]] std::function<void(const SolveProgress&)> solve_progress(ProgressLine& line);

}  // namespace qprune::cli
