// The overwriting progress line on stderr (see progress_line.hpp).
#include "cli/progress_line.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace qprune::cli {

double ProgressLine::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressLine::show(std::string text, bool force) {
  const double now = seconds();
  if (!force && now - last_print_s_ < kInterval_s) {
    pending_ = std::move(text);
    return;
  }
  last_print_s_ = now;
  pending_.clear();
  print(text);
}

void ProgressLine::finish() {
  if (last_width_ == 0) return;
  if (!pending_.empty()) print(pending_);
  pending_.clear();
  std::fputc('\n', stderr);
  std::fflush(stderr);
  last_width_ = 0;
}

void ProgressLine::print(const std::string& text) {
  const std::string line = what_ + ": " + text;
  // Spaces over what a longer previous line left behind.
  const int pad = last_width_ > line.size() ? static_cast<int>(last_width_ - line.size()) : 0;
  std::fprintf(stderr, "\r%s%*s", line.c_str(), pad, "");
  std::fflush(stderr);
  last_width_ = line.size();
}

bool stderr_is_terminal() { return isatty(fileno(stderr)) != 0; }

std::function<void(const SolveProgress&)> solve_progress(ProgressLine& line) {
  return [&line](const SolveProgress& p) {
    // A random read can take a microsecond: format only what can show, and each stage's end
    // (kept for finish()).
    if ((p.total == 0 || p.done < p.total) && !line.due()) return;
    char buffer[160];
    std::string text(p.stage);
    if (p.total > 0) {
      const double pct = 100.0 * static_cast<double>(p.done) / static_cast<double>(p.total);
      std::snprintf(buffer, sizeof buffer, " %lld/%lld (%.0f%%)", static_cast<long long>(p.done),
                    static_cast<long long>(p.total), pct);
    } else {  // open-ended: reads until the time limit
      std::snprintf(buffer, sizeof buffer, " %lld", static_cast<long long>(p.done));
    }
    text += buffer;
    if (!std::isnan(p.best_energy)) {
      std::snprintf(buffer, sizeof buffer, ", best %.10g", p.best_energy);
      text += buffer;
    }
    if (!std::isnan(p.objective)) {
      std::snprintf(buffer, sizeof buffer, ", <C> %.6g", p.objective);
      text += buffer;
    }
    std::snprintf(buffer, sizeof buffer, ", %.1f s", line.seconds());
    line.show(text + buffer);
  };
}

}  // namespace qprune::cli
