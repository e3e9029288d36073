// The comparison as files: runs.csv, summary.csv, and three SVG plots drawn with a tiny writer of
// our own (rectangles, circles, lines and text are all the plots need; no plotting library).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "qprune/comparison.hpp"

namespace qprune {
namespace {

std::string number(double v) {
  if (std::isnan(v)) return "";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string short_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += (c == '\n' || c == '\r') ? ' ' : c;
  }
  return out + "\"";
}

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Colour-blind-safe palette (Okabe-Ito), cycled.
const char* colour(std::size_t i) {
  static const char* kColours[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                   "#E69F00", "#56B4E9", "#000000", "#F0E442"};
  return kColours[i % (sizeof kColours / sizeof kColours[0])];
}

/// A minimal SVG document: the plot area is [left, left + width] x [top, top + height].
class Svg {
 public:
  Svg(double width, double height) : w_(width), h_(height) {}
  void rect(double x, double y, double w, double h, const std::string& fill,
            const std::string& extra = "") {
    out_ << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << w << "\" height=\"" << h
         << "\" fill=\"" << fill << "\"" << extra << "/>\n";
  }
  /// One run's point: shape `shape` (circle, square, triangle, diamond, inverted triangle, cross;
  /// then the same hollow; cycled) of radius r, class "run" whatever the shape.
  void marker(double x, double y, double r, std::size_t shape, const std::string& fill) {
    std::ostringstream d;
    switch (shape % 6) {
      case 0:  // circle: two arcs
        d << "M" << x - r << " " << y << "a" << r << " " << r << " 0 1 0 " << 2 * r << " 0a" << r
          << " " << r << " 0 1 0 " << -2 * r << " 0Z";
        break;
      case 1:
        d << "M" << x - r << " " << y - r << "h" << 2 * r << "v" << 2 * r << "h" << -2 * r << "Z";
        break;
      case 2:
        d << "M" << x << " " << y - r << "L" << x + r << " " << y + r << "L" << x - r << " "
          << y + r << "Z";
        break;
      case 3:
        d << "M" << x << " " << y - r << "L" << x + r << " " << y << "L" << x << " " << y + r << "L"
          << x - r << " " << y << "Z";
        break;
      case 4:
        d << "M" << x << " " << y + r << "L" << x + r << " " << y - r << "L" << x - r << " "
          << y - r << "Z";
        break;
      default:  // a cross, as a thick X outline
        d << "M" << x - r << " " << y - r << "L" << x + r << " " << y + r << "M" << x + r << " "
          << y - r << "L" << x - r << " " << y + r;
        out_ << "<path class=\"run\" d=\"" << d.str() << "\" stroke=\"" << fill
             << "\" stroke-width=\"2\" fill=\"none\"/>\n";
        return;
    }
    // Shapes 6-11 are the first six drawn hollow, so 12 instances stay apart.
    if ((shape / 6) % 2 == 1)
      out_ << "<path class=\"run\" d=\"" << d.str() << "\" stroke=\"" << fill
           << "\" stroke-width=\"1.5\" fill=\"none\"/>\n";
    else
      out_ << "<path class=\"run\" d=\"" << d.str() << "\" fill=\"" << fill
           << "\" fill-opacity=\"0.7\"/>\n";
  }
  void line(double x1, double y1, double x2, double y2, const std::string& stroke = "#000",
            double width = 1.0) {
    out_ << "<line x1=\"" << x1 << "\" y1=\"" << y1 << "\" x2=\"" << x2 << "\" y2=\"" << y2
         << "\" stroke=\"" << stroke << "\" stroke-width=\"" << width << "\"/>\n";
  }
  void text(double x, double y, const std::string& s, const std::string& anchor = "start",
            double size = 12, double rotate = 0) {
    out_ << "<text x=\"" << x << "\" y=\"" << y << "\" font-size=\"" << size
         << "\" font-family=\"sans-serif\" text-anchor=\"" << anchor << "\"";
    if (rotate != 0) out_ << " transform=\"rotate(" << rotate << " " << x << " " << y << ")\"";
    out_ << ">" << xml_escape(s) << "</text>\n";
  }
  [[nodiscard]] std::string str() const {
    std::ostringstream doc;
    doc << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w_ << "\" height=\"" << h_
        << "\" viewBox=\"0 0 " << w_ << " " << h_ << "\">\n"
        << "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n"
        << out_.str() << "</svg>\n";
    return doc.str();
  }

 private:
  double w_, h_;
  std::ostringstream out_;
};

constexpr double kLeft = 80, kTop = 40, kPlotW = 640, kPlotH = 320;

/// Axis ticks at 1, 2 or 5 x 10^k, about `count` of them over [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int count) {
  const double raw = (hi - lo) / std::max(1, count);
  if (!(raw > 0.0) || !std::isfinite(raw)) return {lo};
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (const double m : {1.0, 2.0, 5.0, 10.0})
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + 1e-9 * step; t += step)
    ticks.push_back(std::abs(t) < 1e-12 * step ? 0.0 : t);
  return ticks;
}

/// Instance names under the x axis, slanted when there are many.
void instance_label(Svg& svg, double x, const std::string& name, std::size_t count) {
  if (count <= 6)
    svg.text(x, kTop + kPlotH + 16, name, "middle", 11);
  else
    svg.text(x, kTop + kPlotH + 12, name, "end", 10, -35);
}

std::vector<std::string> solver_labels(const ComparisonReport& report) {
  std::vector<std::string> labels;
  for (const RunRecord& r : report.runs)
    if (std::find(labels.begin(), labels.end(), r.solver) == labels.end())
      labels.push_back(r.solver);
  return labels;
}

std::vector<std::string> instance_names(const ComparisonReport& report) {
  std::vector<std::string> names;
  for (const RunRecord& r : report.runs)
    if (std::find(names.begin(), names.end(), r.instance) == names.end())
      names.push_back(r.instance);
  return names;
}

void legend(Svg& svg, const std::vector<std::string>& labels) {
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const double y = kTop + 14.0 * static_cast<double>(i);
    svg.rect(kLeft + kPlotW + 15, y, 10, 10, colour(i));
    svg.text(kLeft + kPlotW + 30, y + 9, labels[i]);
  }
}

/// The marker shape of each instance, below the solvers' colours.
void shape_legend(Svg& svg, const std::vector<std::string>& names, std::size_t solvers) {
  const double top = kTop + 14.0 * static_cast<double>(solvers) + 12.0;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const double y = top + 14.0 * static_cast<double>(i);
    svg.marker(kLeft + kPlotW + 20, y + 5, 4.5, i, "#555");
    svg.text(kLeft + kPlotW + 30, y + 9, names[i]);
  }
}

void frame(Svg& svg, const std::string& title, const std::string& xlabel,
           const std::string& ylabel) {
  svg.line(kLeft, kTop + kPlotH, kLeft + kPlotW, kTop + kPlotH);
  svg.line(kLeft, kTop, kLeft, kTop + kPlotH);
  svg.text(kLeft + kPlotW / 2, 22, title, "middle", 14);
  svg.text(kLeft + kPlotW / 2, kTop + kPlotH + 60, xlabel, "middle");
  svg.text(20, kTop + kPlotH / 2, ylabel, "middle", 12, -90);
}

/// Grouped bars, one group per instance and one bar per solver; `value_of` gives the bar height
/// in plot units in [0, 1] (NaN: no bar) and the text written above it.
template <class ValueOf>
void grouped_bars(Svg& svg, const ComparisonReport& report, ValueOf value_of) {
  const std::vector<std::string> labels = solver_labels(report);
  const std::vector<std::string> names = instance_names(report);
  const double group_w = kPlotW / static_cast<double>(std::max<std::size_t>(1, names.size()));
  const double bar_w = 0.8 * group_w / static_cast<double>(std::max<std::size_t>(1, labels.size()));
  for (std::size_t g = 0; g < names.size(); ++g) {
    const double x0 = kLeft + group_w * static_cast<double>(g) + 0.1 * group_w;
    instance_label(svg, x0 + 0.4 * group_w, names[g], names.size());
    for (std::size_t b = 0; b < labels.size(); ++b) {
      for (const CellSummary& s : report.summaries) {
        if (s.instance != names[g] || s.solver != labels[b]) continue;
        const auto [height, text] = value_of(s);
        const double x = x0 + bar_w * static_cast<double>(b);
        if (!std::isnan(height)) {
          // A zero bar stays visible as a 2-pixel stub in its colour.
          const double h = std::max(2.0, std::clamp(height, 0.0, 1.0) * kPlotH);
          svg.rect(x, kTop + kPlotH - h, bar_w * 0.9, h, colour(b));
        }
        if (!text.empty())
          svg.text(
              x + bar_w * 0.45,
              kTop + kPlotH - 4 - (std::isnan(height) ? 0 : std::clamp(height, 0.0, 1.0) * kPlotH),
              text, "middle", 9);
      }
    }
  }
  legend(svg, labels);
}

}  // namespace

std::string runs_csv(const ComparisonReport& report, const Tolerance& tolerance) {
  std::ostringstream out;
  out << "run,instance,instance_spec,n,solver,seed,status,energy,feasible,wall_time_s,threads,"
         "gap_abs,gap_rel,success,message\n";
  for (const RunRecord& r : report.runs) {
    const auto ref = report.references.find(r.instance);
    const bool has_ref = ref != report.references.end() && ref->second.kind != ReferenceKind::kNone;
    const double gap = has_ref && r.has_solution ? r.energy - ref->second.energy
                                                 : std::numeric_limits<double>::quiet_NaN();
    const double rel = has_ref && r.has_solution ? relative_gap(r.energy, ref->second.energy)
                                                 : std::numeric_limits<double>::quiet_NaN();
    const bool success = has_ref && is_success(r, ref->second, tolerance);
    out << r.index << "," << csv_field(r.instance) << "," << csv_field(r.instance_spec) << ","
        << r.num_variables << "," << csv_field(r.solver) << "," << r.seed << ","
        << to_string(r.status) << "," << (r.has_solution ? number(r.energy) : "") << ","
        << (r.has_solution ? (r.feasible ? "1" : "0") : "") << "," << number(r.wall_time_s) << ","
        << r.threads << "," << number(gap) << "," << number(rel) << "," << (success ? 1 : 0) << ","
        << csv_field(r.message) << "\n";
  }
  return out.str();
}

std::string summary_csv(const ComparisonReport& report) {
  std::ostringstream out;
  out << "solver,instance,n,runs,runs_solved,best,median,worst,reference,reference_kind,"
         "best_gap_abs,best_gap_rel,median_gap_rel,success_probability,median_time_s,tts99_s,"
         "feasibility_rate,threads,qaoa_layers,qaoa_expected_energy,qaoa_approximation_ratio,"
         "qaoa_optimum_probability,note\n";
  const auto qaoa = [](const CellSummary& s, const char* key) {
    const auto it = s.qaoa.find(key);
    return it == s.qaoa.end() ? std::string() : number(it->second);
  };
  for (const CellSummary& s : report.summaries) {
    out << csv_field(s.solver) << "," << csv_field(s.instance) << "," << s.num_variables << ","
        << s.runs << "," << s.runs_solved << "," << number(s.best) << "," << number(s.median) << ","
        << number(s.worst) << "," << number(s.reference.energy) << ","
        << to_string(s.reference.kind) << "," << number(s.best_gap_abs) << ","
        << number(s.best_gap_rel) << "," << number(s.median_gap_rel) << ","
        << number(s.success_probability) << "," << number(s.median_time_s) << ","
        << number(s.tts99_s) << "," << number(s.feasibility_rate) << "," << s.threads << ","
        << qaoa(s, "layers") << "," << qaoa(s, "expected_energy") << ","
        << qaoa(s, "approximation_ratio") << "," << qaoa(s, "optimum_probability") << ","
        << csv_field(s.note) << "\n";
  }
  return out.str();
}

std::string gap_vs_time_svg(const ComparisonReport& report) {
  Svg svg(kLeft + kPlotW + 160, kTop + kPlotH + 80);
  frame(svg, "Relative gap to the reference vs wall time per run", "wall time per run (s, log)",
        "(E - ref) / |ref|");
  const std::vector<std::string> labels = solver_labels(report);
  const std::vector<std::string> instances = instance_names(report);
  struct Point {
    double t, gap;
    std::size_t solver, instance;
  };
  std::vector<Point> points;
  for (const RunRecord& r : report.runs) {
    const auto ref = report.references.find(r.instance);
    if (!r.has_solution || !r.feasible || ref == report.references.end()) continue;
    const double gap = relative_gap(r.energy, ref->second.energy);
    if (std::isnan(gap)) continue;
    const auto s = static_cast<std::size_t>(std::find(labels.begin(), labels.end(), r.solver) -
                                            labels.begin());
    const auto i = static_cast<std::size_t>(
        std::find(instances.begin(), instances.end(), r.instance) - instances.begin());
    points.push_back({std::max(r.wall_time_s, 1e-6), gap, s, i});
  }
  double tmin = 1e-3, tmax = 1.0, gmin = 0.0, gmax = 0.01;
  if (!points.empty()) {
    tmin = tmax = points.front().t;
    for (const Point& p : points) {
      tmin = std::min(tmin, p.t);
      tmax = std::max(tmax, p.t);
      gmin = std::min(gmin, p.gap);
      gmax = std::max(gmax, p.gap);
    }
  }
  const double lx0 = std::floor(std::log10(tmin)),
               lx1 = std::max(lx0 + 1, std::ceil(std::log10(tmax)));
  const auto px = [&](double t) { return kLeft + (std::log10(t) - lx0) / (lx1 - lx0) * kPlotW; };
  const auto py = [&](double g) { return kTop + kPlotH - (g - gmin) / (gmax - gmin) * kPlotH; };
  for (double e = lx0; e <= lx1; e += 1) {
    svg.line(px(std::pow(10, e)), kTop + kPlotH, px(std::pow(10, e)), kTop + kPlotH + 5);
    svg.text(px(std::pow(10, e)), kTop + kPlotH + 30, "1e" + short_number(e), "middle", 11);
  }
  for (const double g : nice_ticks(gmin, gmax, 5)) {
    svg.line(kLeft - 5, py(g), kLeft, py(g));
    svg.text(kLeft - 8, py(g) + 4, short_number(g), "end", 11);
    if (g == 0.0) svg.line(kLeft, py(g), kLeft + kPlotW, py(g), "#bbb");  // the reference
  }
  // Colour: the solver; shape: the instance; every seed's run is its own point (the spread).
  for (const Point& p : points) svg.marker(px(p.t), py(p.gap), 4, p.instance, colour(p.solver));
  legend(svg, labels);
  shape_legend(svg, instances, labels.size());
  return svg.str();
}

std::string success_svg(const ComparisonReport& report) {
  Svg svg(kLeft + kPlotW + 160, kTop + kPlotH + 80);
  frame(svg, "Success probability (within tolerance of the reference)", "instance",
        "success probability");
  for (int k = 0; k <= 4; ++k) {
    const double y = kTop + kPlotH - kPlotH * k / 4.0;
    svg.line(kLeft - 5, y, kLeft, y);
    svg.text(kLeft - 8, y + 4, short_number(k / 4.0), "end", 11);
  }
  grouped_bars(svg, report, [](const CellSummary& s) {
    const bool ran = !std::isnan(s.median_time_s);
    return std::make_pair(ran ? s.success_probability : std::numeric_limits<double>::quiet_NaN(),
                          ran ? std::string() : std::string("n/a"));
  });
  return svg.str();
}

std::string tts_svg(const ComparisonReport& report) {
  Svg svg(kLeft + kPlotW + 160, kTop + kPlotH + 80);
  frame(svg, "Time to solution, 99% confidence (TTS99)", "instance", "TTS99 (s, log)");
  double lo = std::numeric_limits<double>::infinity(), hi = 0;
  for (const CellSummary& s : report.summaries) {
    if (std::isfinite(s.tts99_s) && s.tts99_s > 0) {
      lo = std::min(lo, s.tts99_s);
      hi = std::max(hi, s.tts99_s);
    }
  }
  if (!std::isfinite(lo)) lo = hi = 1.0;
  const double l0 = std::floor(std::log10(lo)) - 1,
               l1 = std::max(l0 + 1, std::ceil(std::log10(hi)));
  for (double e = l0; e <= l1; e += 1) {
    const double y = kTop + kPlotH - (e - l0) / (l1 - l0) * kPlotH;
    svg.line(kLeft - 5, y, kLeft, y);
    svg.text(kLeft - 8, y + 4, "1e" + short_number(e), "end", 11);
  }
  grouped_bars(svg, report, [&](const CellSummary& s) {
    if (std::isnan(s.median_time_s))
      return std::make_pair(std::numeric_limits<double>::quiet_NaN(), std::string("n/a"));
    if (!std::isfinite(s.tts99_s))
      return std::make_pair(std::numeric_limits<double>::quiet_NaN(), std::string("inf"));
    const double t = std::max(s.tts99_s, std::pow(10.0, l0));
    return std::make_pair((std::log10(t) - l0) / (l1 - l0), std::string());
  });
  return svg.str();
}

}  // namespace qprune
