// Report printing: aligned `Key : value` text or one JSON object.
#include "cli/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iomanip>

namespace qprune::cli {

namespace {
// Doubles of at most this magnitude with no fractional part print as integers (2^63: they also
// fit a JSON integer; "%.0f" is exact for every double).
constexpr double kIntegerLimit = 0x1p63;

bool is_integer(double v) {
  return std::isfinite(v) && v == std::nearbyint(v) && std::abs(v) < kIntegerLimit;
}
}  // namespace

std::string format_double(double v) {
  char buf[64];
  if (is_integer(v)) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

nlohmann::json json_number(double v) {
  if (is_integer(v)) return static_cast<std::int64_t>(v);
  return v;
}

void Report::print(std::ostream& out, bool as_json) const {
  if (as_json) {
    nlohmann::json j = extra_;
    j["format"] = "qprune-" + command_ + "-report";
    j["version"] = kReportVersion;
    j["qprune_version"] = QPRUNE_VERSION;
    for (const Line& l : lines_)
      if (!l.json_key.empty()) j[l.json_key] = l.value;
    out << j.dump(2) << "\n";
    return;
  }
  std::size_t width = 0;
  for (const Line& l : lines_) width = std::max(width, l.label.size());
  for (const Line& l : lines_) {
    std::string text;
    if (l.value.is_string()) {
      text = l.value.get<std::string>();
    } else if (l.value.is_number_float()) {
      text = format_double(l.value.get<double>());
    } else if (l.value.is_boolean()) {  // JSON true/false, text yes/no
      text = l.value.get<bool>() ? "yes" : "no";
    } else {
      text = l.value.dump();
    }
    out << std::left << std::setw(static_cast<int>(width)) << l.label << " : " << text << "\n";
  }
}

void notice_head_sparsity(std::ostream& err, const std::string& flag, double requested,
                          double applied, int kept, int units, const std::string& unit_name) {
  if (std::abs(applied - requested) < 1e-9) return;
  err << "qprune: notice: " << flag << " " << requested << " is applied as head sparsity "
      << applied << " (" << unit_name << " go in whole steps: " << kept << " of " << units
      << " kept per layer)\n";
}

}  // namespace qprune::cli
