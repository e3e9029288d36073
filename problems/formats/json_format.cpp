// qprune JSON `.json`: the lossless native format. One object:
//   {"format": "qprune-qubo", "format_version": 1, "num_variables": n, "labels": [...],
//    "linear": [c_0, ...], "quadratic": [[i, j, q_ij], ...], "offset": x,
//    "constraints": [{"name": ..., "variables": [...], "k": ...}], "metadata": {...}}
// minimise offset + sum c_i x_i + sum q_ij x_i x_j (0-based; i == j adds to c_i; repeated pairs
// add, as QuboModel::from_couplings does). Doubles are written in the shortest form that reads back
// exactly. JSON syntax errors carry the line of the error; a wrong value carries the line of its
// key.
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/json_input.hpp"
#include "problems/formats/format_entry.hpp"
#include "qprune/error.hpp"

namespace qprune::formats_detail {
namespace {

using nlohmann::json;

class JsonReader {
 public:
  explicit JsonReader(TextInput& in) : in_(in) {}

  // Line of the first `"key"` in the text (1 when absent), for messages about that key's value.
  std::int64_t key_line(const std::string& key) const {
    const std::size_t at = in_.text().find("\"" + key + "\"");
    return at == std::string::npos ? 1 : line_of_offset(in_.text(), at);
  }
  [[noreturn]] void fail(const std::string& key, const std::string& expected,
                         const std::string& found) const {
    in_.fail_at(key_line(key), "expected " + expected + ", found " + found);
  }
  static std::string show(const json& j) { return detail::describe_json(j); }
  double number(const json& j, const std::string& key, const std::string& what) const {
    if (!j.is_number()) fail(key, what + " (a number)", show(j));
    const double v = j.get<double>();
    if (!std::isfinite(v)) fail(key, what + " (a finite number)", show(j));
    return v;
  }
  int index(const json& j, const std::string& key, const std::string& what, int n) const {
    if (!j.is_number_integer() || j.get<std::int64_t>() < 0 || j.get<std::int64_t>() >= n)
      fail(key, what + " (an index in [0, " + std::to_string(n) + "))", show(j));
    return static_cast<int>(j.get<std::int64_t>());
  }
  const json& array(const json& root, const std::string& key) const {
    const json& a = root.at(key);
    if (!a.is_array()) fail(key, "\"" + key + "\" to be an array", show(a));
    return a;
  }

  QuboModel read() {
    json root = detail::parse_json<json>(in_.text(), {in_.path(), 0, true});
    if (!root.is_object()) in_.fail_at(1, "expected a JSON object, found " + show(root));
    if (root.contains("format") && root["format"] != "qprune-qubo")
      fail("format", "\"qprune-qubo\"", show(root["format"]));
    if (!root.contains("format_version"))
      in_.fail_at(1, "expected the key \"format_version\", found none");
    if (root["format_version"] != 1)
      fail("format_version", "format_version 1", show(root["format_version"]));
    if (!root.contains("linear")) in_.fail_at(1, "expected the key \"linear\", found none");
    const json& lin = array(root, "linear");
    const int n = static_cast<int>(lin.size());
    if (root.contains("num_variables") && (!root["num_variables"].is_number_integer() ||
                                           root["num_variables"].get<std::int64_t>() != n))
      fail("num_variables",
           "num_variables equal to the length of \"linear\" (" + std::to_string(n) + ")",
           show(root["num_variables"]));
    Eigen::VectorXd c(n);
    for (int i = 0; i < n; ++i)
      c[i] =
          number(lin[static_cast<std::size_t>(i)], "linear", "linear[" + std::to_string(i) + "]");
    std::vector<Coupling> q;
    if (root.contains("quadratic")) {
      const json& quad = array(root, "quadratic");
      for (std::size_t k = 0; k < quad.size(); ++k) {
        const json& e = quad[k];
        const std::string name = "quadratic[" + std::to_string(k) + "]";
        if (!e.is_array() || e.size() != 3) fail("quadratic", name + " as [i, j, value]", show(e));
        q.push_back({index(e[0], "quadratic", name + " i", n),
                     index(e[1], "quadratic", name + " j", n),
                     number(e[2], "quadratic", name + " value")});
      }
    }
    const double offset =
        root.contains("offset") ? number(root["offset"], "offset", "offset") : 0.0;
    QuboModel m = QuboModel::from_couplings(n, std::move(c), q, offset);
    if (root.contains("labels") && !root["labels"].is_null()) {
      const json& labels = array(root, "labels");
      std::vector<std::string> v;
      for (const json& l : labels) {
        if (!l.is_string()) fail("labels", "labels as strings", show(l));
        v.push_back(l.get<std::string>());
      }
      try {
        m.set_labels(std::move(v));
      } catch (const InvalidArgument& e) {
        fail("labels", "one unique label per variable", e.what());
      }
    }
    if (root.contains("constraints")) {
      const json& groups = array(root, "constraints");
      for (std::size_t g = 0; g < groups.size(); ++g) {
        const json& e = groups[g];
        const std::string name = "constraints[" + std::to_string(g) + "]";
        if (!e.is_object() || !e.contains("variables") || !e.contains("k") ||
            !e["k"].is_number_integer())
          fail("constraints", name + " as {\"name\", \"variables\", \"k\"}", show(e));
        CardinalityConstraint cc;
        if (e.contains("name")) {
          if (!e["name"].is_string())
            fail("constraints", name + " name as a string", show(e["name"]));
          cc.name = e["name"].get<std::string>();
        }
        if (!e["variables"].is_array())
          fail("constraints", name + " variables as an array", show(e["variables"]));
        for (const json& v : e["variables"])
          cc.variables.push_back(index(v, "constraints", name + " variable", n));
        // k beyond int would wrap in the cast and pass as another k: refuse it here.
        if (!e["k"].is_number_unsigned() ||
            e["k"].get<std::uint64_t>() > static_cast<std::uint64_t>(n))
          fail("constraints", name + " k in [0, " + std::to_string(n) + "]", show(e["k"]));
        cc.k = static_cast<int>(e["k"].get<std::uint64_t>());
        try {
          m.add_constraint(std::move(cc));
        } catch (const InvalidArgument& err) {
          fail("constraints", name + " valid (disjoint groups, 0 <= k <= size)", err.what());
        }
      }
    }
    if (root.contains("metadata")) {
      const json& meta = root["metadata"];
      if (!meta.is_object()) fail("metadata", "metadata as an object of strings", show(meta));
      for (auto it = meta.begin(); it != meta.end(); ++it) {
        if (!it.value().is_string())
          fail("metadata", "metadata values as strings", show(it.value()));
        m.metadata[it.key()] = it.value().get<std::string>();
      }
    }
    return m;
  }

 private:
  TextInput& in_;
};

QuboModel read_json(TextInput& in, int /*instance*/) {
  if (in.text().find_first_not_of(" \t\r\n") == std::string::npos) in.fail_eof("a JSON object");
  return JsonReader(in).read();
}

void write_json(const QuboModel& m, const WriteContext& /*context*/, std::string& out) {
  json root;
  root["format"] = "qprune-qubo";
  root["format_version"] = 1;
  root["num_variables"] = m.num_variables();
  if (!m.labels().empty()) root["labels"] = m.labels();
  json lin = json::array();
  for (int i = 0; i < m.num_variables(); ++i) lin.push_back(m.linear()[i]);
  root["linear"] = std::move(lin);
  json quad = json::array();
  m.for_each_coupling([&](int i, int j, double v) { quad.push_back(json::array({i, j, v})); });
  root["quadratic"] = std::move(quad);
  root["offset"] = m.offset();
  json groups = json::array();
  for (const CardinalityConstraint& g : m.constraints())
    groups.push_back({{"name", g.name}, {"variables", g.variables}, {"k", g.k}});
  root["constraints"] = std::move(groups);
  root["metadata"] = m.metadata;
  // One entry per line for the big arrays keeps diffs and error lines readable.
  out += "{\n";
  bool first = true;
  for (auto it = root.begin(); it != root.end(); ++it) {
    out += first ? "  " : ",\n  ";
    first = false;
    out += json(it.key()).dump() + ": ";
    if (it.value().is_array() && !it.value().empty()) {
      out += "[\n";
      for (std::size_t k = 0; k < it.value().size(); ++k)
        out += "    " + it.value()[k].dump() + (k + 1 < it.value().size() ? ",\n" : "\n");
      out += "  ]";
    } else {
      out += it.value().dump();
    }
  }
  out += "\n}\n";
}

}  // namespace

FormatEntry json_format() {
  return {{"json",
           {".json"},
           true,
           true,
           "qprune JSON: lossless (labels, constraint groups, metadata), 0-based, minimise"},
          read_json,
          write_json,
          true,
          false};
}

}  // namespace qprune::formats_detail
