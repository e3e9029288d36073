// Instances of a comparison (a QUBO file, `file#k`, or whatever a registered loader accepts) and
// the known-values table that gives their reference energies.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>

#include "core/input_file.hpp"
#include "qprune/comparison.hpp"
#include "qprune/error.hpp"
#include "qprune/formats.hpp"
#include "qprune/layer_instance.hpp"

namespace qprune {
namespace {

std::mutex& loaders_mutex() {
  static std::mutex m;
  return m;
}
std::vector<InstanceLoader>& loaders() {
  static std::vector<InstanceLoader> list;
  return list;
}

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

std::vector<std::string> split_fields(const std::string& line, std::size_t count) {
  // The first count-1 commas separate fields; the last field is the rest of the line (a source
  // text may contain commas).
  std::vector<std::string> fields;
  std::size_t start = 0;
  while (fields.size() + 1 < count) {
    const std::size_t comma = line.find(',', start);
    if (comma == std::string::npos) break;
    fields.push_back(line.substr(start, comma - start));
    start = comma + 1;
  }
  fields.push_back(line.substr(start));
  return fields;
}

double parse_number(const std::string& text, const std::string& path, std::int64_t line,
                    const char* what) {
  std::size_t used = 0;
  double v = 0.0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !std::isfinite(v)) {
    throw ParseError(path, line, std::string("expected ") + what + ", found '" + text + "'");
  }
  return v;
}

}  // namespace

void register_instance_loader(InstanceLoader loader) {
  std::lock_guard<std::mutex> lock(loaders_mutex());
  loaders().push_back(std::move(loader));
}

std::string instance_name(const std::string& spec) {
  std::string path = spec;
  std::string suffix;
  const std::size_t hash = path.rfind('#');
  if (hash != std::string::npos && all_digits(path.substr(hash + 1))) {
    suffix = std::string(1, '.').append(path, hash + 1);
    path.resize(hash);
  }
  const std::size_t slash = path.find_last_of("/\\");
  std::string file = slash == std::string::npos ? path : path.substr(slash + 1);
  if (file.size() > 3 && file.ends_with(".gz")) file.resize(file.size() - 3);
  // Only a format's extension is dropped: `g05_60.0` and `ising2.5-100_5555` keep their dots.
  const std::size_t dot = file.rfind('.');
  if (dot != std::string::npos && dot > 0) {
    std::string ext = file.substr(dot);
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    bool known = ext == ".txt";
    for (const FormatInfo& f : formats())
      for (const std::string& e : f.extensions) known = known || e == ext;
    if (known) file.resize(dot);
  }
  return file + suffix;
}

Instance make_instance(const std::string& spec) {
  if (spec.empty()) throw InvalidArgument("make_instance: empty instance spec");
  std::vector<InstanceLoader> copy;
  {
    std::lock_guard<std::mutex> lock(loaders_mutex());
    copy = loaders();
  }
  for (const InstanceLoader& loader : copy) {
    if (std::optional<Instance> instance = loader(spec)) return *std::move(instance);
  }
  Instance instance;
  instance.spec = spec;
  if (const std::optional<LayerInstanceSpec> layer = parse_layer_instance(spec)) {
    instance.name = layer_instance_name(*layer);
    instance.load = [layer = *layer] { return load_layer_instance(layer); };
    return instance;
  }
  instance.name = instance_name(spec);
  instance.load = [spec] { return read_model(spec); };
  return instance;
}

std::map<std::string, KnownValue> read_known_values(const std::string& path) {
  std::istringstream in(detail::read_input_file(path));  // a regular file only (never blocks)
  static const std::string kHeader = "family,instance,n,sense,value,status,source";
  std::map<std::string, KnownValue> table;
  std::string line;
  std::int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (number == 1) {
      if (line != kHeader) {
        throw ParseError(path, number, "expected header '" + kHeader + "', found '" + line + "'");
      }
      continue;
    }
    if (line.empty()) continue;
    const std::vector<std::string> f = split_fields(line, 7);
    if (f.size() != 7) {
      throw ParseError(path, number,
                       "expected 7 comma-separated fields, found " + std::to_string(f.size()));
    }
    KnownValue v;
    v.family = f[0];
    v.instance = f[1];
    if (v.instance.empty()) throw ParseError(path, number, "expected an instance name, found ''");
    const double n = parse_number(f[2], path, number, "a variable count n");
    if (n < 0 || n != std::floor(n) || n > 1e9) {
      throw ParseError(path, number, "expected a non-negative integer n, found '" + f[2] + "'");
    }
    v.num_variables = static_cast<int>(n);
    if (f[3] != "min" && f[3] != "max") {
      throw ParseError(path, number, "expected sense 'min' or 'max', found '" + f[3] + "'");
    }
    v.maximise = f[3] == "max";
    v.value = parse_number(f[4], path, number, "a finite value");
    if (f[5] != "optimal" && f[5] != "best-known") {
      throw ParseError(path, number,
                       "expected status 'optimal' or 'best-known', found '" + f[5] + "'");
    }
    v.optimal = f[5] == "optimal";
    v.source = f[6];
    if (!table.emplace(v.instance, v).second) {
      throw ParseError(path, number,
                       "expected each instance once, found '" + v.instance + "' again");
    }
  }
  if (number == 0)
    throw ParseError(path, 1, "expected header '" + kHeader + "', found an empty file");
  return table;
}

}  // namespace qprune
