// The format registry: the list of formats, lookup by name and extension, content sniffing for
// ambiguous extensions, and read_model / write_model on top of the per-format readers and writers.
// Also the helpers every format shares (number text, atomic writes, `file#k` paths).
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <unordered_set>

#include "core/input_file.hpp"
#include "core/memory_check.hpp"
#include "problems/formats/format_entry.hpp"
#include "qprune/atomic_output.hpp"
#include "qprune/error.hpp"
#include "qprune/formats.hpp"

namespace qprune {
namespace formats_detail {
namespace {

const std::vector<FormatEntry>& registry() {
  static const std::vector<FormatEntry> entries = {
      qbsolv_format(),  coo_format(),           json_format(),  mqlib_format(), maxcut_format(),
      beasley_format(), biqmac_format(),        qplib_format(), lp_format(),    lp_linear_format(),
      mps_format(),     matrix_market_format(), qasm_format()};
  return entries;
}

const FormatEntry& entry_by_name(const std::string& name) {
  const std::string key = lower_case(name);
  for (const FormatEntry& e : registry())
    if (e.info.name == key) return e;
  std::string names;
  for (const FormatEntry& e : registry()) names += (names.empty() ? "" : ", ") + e.info.name;
  throw InvalidArgument("unknown format '" + name + "' (known: " + names + ")");
}

// Lower-case extension of a file name with any ".gz" removed ("" when none).
std::string extension_of(const std::string& file) {
  std::string name = lower_case(std::filesystem::path(file).filename().string());
  if (name.size() > 3 && name.ends_with(".gz")) name.resize(name.size() - 3);
  const std::size_t dot = name.rfind('.');
  return dot == std::string::npos || dot == 0 ? std::string() : name.substr(dot);
}

// Guesses the format from the first non-comment line of the file.
std::string sniff(const std::string& file, const std::string& extension,
                  std::optional<std::uint64_t> inflated_limit_bytes) {
  // The first 1 MiB of a plain file holds its first line: the file is read again whole by its
  // reader, so reading it whole here too would double the cost of a large `.txt` file. gzip
  // input, or a first line that does not end inside the prefix, is read whole as before.
  constexpr std::size_t kPrefixBytes = std::size_t{1} << 20;
  std::string head(kPrefixBytes, '\0');
  std::size_t have = 0;
  {
    detail::InputFile f(file);
    for (std::size_t got = 1; got > 0 && have < head.size(); have += got)
      got = f.read_some(head.data() + have, head.size() - have);
  }
  head.resize(have);
  const bool gzip = have >= 2 && static_cast<unsigned char>(head[0]) == 0x1f &&
                    static_cast<unsigned char>(head[1]) == 0x8b;
  if (!gzip && have == kPrefixBytes) {
    TextInput prefix(file, head);
    prefix.comment_chars = "#";
    // Complete when a newline follows the first content line inside the prefix.
    if (prefix.next_line() && prefix.offset() <= head.size() && head[prefix.offset() - 1] == '\n')
      head.resize(prefix.offset());
    else
      have = 0;  // read whole below
  }
  TextInput in = gzip || have == 0 ? TextInput::open(file, inflated_limit_bytes)
                                   : TextInput(file, std::move(head));
  in.comment_chars = "#";
  if (!in.next_line())
    throw InvalidArgument("cannot tell the format of " + file + ": it has no content");
  const std::vector<std::string_view> tokens = in.tokens();
  if (in.line().front() == '{') return "json";
  if (tokens.size() >= 2 && tokens[0] == "p" && tokens[1] == "qubo") return "qbsolv";
  if (tokens.size() == 1) return "beasley";
  if (tokens.size() == 2 && extension == ".txt") return "maxcut";
  throw InvalidArgument(
      "cannot tell the format of " + file + " from its extension '" + extension +
      "' or its first line; give the format explicitly (maxcut, mqlib, biqmac, ...)");
}

}  // namespace

std::map<std::string, std::string> header_metadata(std::string_view text) {
  // Only the header is looked at: the writers put the fields there, and a large body is not
  // scanned for them.
  constexpr int kHeaderLines = 64;
  std::map<std::string, std::string> fields;
  std::size_t pos = 0;
  for (int n = 0; n < kHeaderLines && pos < text.size(); ++n) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    // A comment: `#`, `\`, `*`, `%` or qbsolv's `c ` at the start, then blanks.
    std::size_t k = line.find_first_not_of(" \t");
    if (k == std::string_view::npos) continue;
    if (line[k] == '#' || line[k] == '\\' || line[k] == '*' || line[k] == '%') {
      ++k;
    } else if (line.substr(k).starts_with("c ")) {
      k += 2;
    } else {
      continue;
    }
    line = line.substr(k);
    line.remove_prefix(std::min(line.size(), line.find_first_not_of(" \t")));
    if (!line.starts_with("qprune.")) continue;
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view value = line.substr(eq + 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.remove_suffix(1);
    fields[std::string(line.substr(0, eq))] = std::string(value);
  }
  return fields;
}

std::string number_text(double value, int precision, bool plain) {
  char buffer[512];
  std::to_chars_result r{};
  if (value == std::nearbyint(value) && std::fabs(value) < 1e15) {
    r = std::to_chars(buffer, buffer + sizeof(buffer), static_cast<long long>(value));
  } else if (precision >= 17) {
    r = plain ? std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::fixed)
              : std::to_chars(buffer, buffer + sizeof(buffer), value);
  } else {
    r = std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::fixed, precision);
  }
  if (r.ec != std::errc())
    throw InvalidArgument("cannot write the number " + std::to_string(value));
  return std::string(buffer, r.ptr);
}

std::string lower_case(std::string_view text) {
  std::string out(text);
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

void read_triplet_body(TextInput& in, HeadedTripletLines& lines, Eigen::VectorXd& c,
                       std::vector<Coupling>& q, double pair_scale, bool ordered) {
  std::vector<bool> diagonal_seen(static_cast<std::size_t>(c.size()), false);
  std::unordered_set<std::uint64_t> seen;
  HeadedTripletLines::Entry e;
  while (lines.next(e)) {
    if (e.a == e.b) {
      if (diagonal_seen[static_cast<std::size_t>(e.a)]) in.fail("each entry once", in.line());
      diagonal_seen[static_cast<std::size_t>(e.a)] = true;
      c[e.a] = e.value;
      continue;
    }
    const std::uint64_t key =
        ordered ? (static_cast<std::uint64_t>(e.a) << 32) | static_cast<std::uint32_t>(e.b)
                : pair_key(e.a, e.b);
    if (!seen.insert(key).second)
      in.fail(ordered ? "each entry once" : "each pair once", in.line());
    q.push_back({std::min(e.a, e.b), std::max(e.a, e.b), pair_scale * e.value});
  }
}

std::string_view comment_value(std::string_view comment, std::string_view key) {
  while (!comment.empty() &&
         (comment.front() == '#' || comment.front() == 'c' || comment.front() == '%' ||
          comment.front() == ' ' || comment.front() == '\t'))
    comment.remove_prefix(1);
  if (!comment.starts_with(key)) return {};
  comment.remove_prefix(key.size());
  if (comment.empty() || comment.front() != '=') return {};
  comment.remove_prefix(1);
  while (!comment.empty() && (comment.back() == ' ' || comment.back() == '\r'))
    comment.remove_suffix(1);
  return comment;
}

void write_file_atomically(const std::string& path, const std::string& content) {
  const bool gzip = lower_case(path).ends_with(".gz");
  if (!gzip) {
    qprune::write_file_atomically(std::filesystem::path(path), std::string_view(content));
    return;
  }
  // zlib writes through its own descriptor (a dup of the temporary's; gzclose closes it).
  AtomicFile file{std::filesystem::path(path)};
  const int fd = ::dup(file.fd());
  gzFile gz = fd >= 0 ? gzdopen(fd, "wb") : nullptr;
  if (gz == nullptr) {
    if (fd >= 0) ::close(fd);
    throw IoError("cannot write " + file.temporary_path().string() + " (temporary file for " +
                  path + ")");
  }
  bool ok = content.empty() || gzwrite(gz, content.data(), static_cast<unsigned>(content.size())) ==
                                   static_cast<int>(content.size());
  ok = (gzclose(gz) == Z_OK) && ok;
  if (!ok)
    throw IoError("cannot write " + file.temporary_path().string() + " (temporary file for " +
                  path + ")");
  file.commit();
}

namespace {
std::atomic<bool> fast_readers_enabled{true};
std::atomic<std::int64_t> fast_read_count{0};
}  // namespace

std::int64_t fast_reads() { return fast_read_count.load(); }
void count_fast_read() { fast_read_count.fetch_add(1, std::memory_order_relaxed); }

void set_fast_readers(bool enabled) { fast_readers_enabled.store(enabled); }
bool fast_readers() { return fast_readers_enabled.load(std::memory_order_relaxed); }

void check_model_memory(const TextInput& in, std::int64_t n) {
  detail::check_memory(kBytesPerVariable * static_cast<double>(n),
                       concat(in.path(), ": a model of ", std::to_string(n), " variables"),
                       "check the variable count in the file, or raise "
                       "ReadOptions::memory_limit_bytes if the memory is really there",
                       in.memory_limit_bytes);
}

std::int64_t max_plausible_variables(const TextInput& in) {
  return kFreeVariables + kVariablesPerByte * static_cast<std::int64_t>(in.text().size());
}

void check_declared_variables(const TextInput& in, std::int64_t n, const std::string& what,
                              std::string_view token) {
  const std::int64_t max = max_plausible_variables(in);
  if (n > max)
    in.fail(concat(what, " at most ", std::to_string(max), " for a file of ",
                   std::to_string(in.text().size()), " bytes (2^20 + 16 per byte: a count far ",
                   "beyond the data the file holds)"),
            token);
}

void check_declared_entries(const TextInput& in, std::int64_t count, const std::string& what,
                            std::string_view token, std::int64_t min_entry_bytes) {
  const auto bytes = static_cast<std::int64_t>(in.text().size());
  const std::int64_t max = kFreeEntries + (bytes + 1) / min_entry_bytes;
  if (count > max)
    in.fail(concat(what, " at most ", std::to_string(max), " for a file of ", std::to_string(bytes),
                   " bytes (4096 + one per ", std::to_string(min_entry_bytes),
                   " bytes: a count far beyond the entries the file can hold)"),
            token);
}

InstancePath split_instance(const std::string& path) {
  const std::size_t hash = path.rfind('#');
  if (hash == std::string::npos || hash + 1 >= path.size() || std::filesystem::exists(path))
    return {path, 0};
  int k = 0;
  const char* first = path.data() + hash + 1;
  const char* last = path.data() + path.size();
  const auto [end, ec] = std::from_chars(first, last, k);
  if (ec != std::errc() || end != last) return {path, 0};
  if (k < 1) throw InvalidArgument("instance number in '" + path + "' must be >= 1");
  return {path.substr(0, hash), k};
}

}  // namespace formats_detail

using formats_detail::FormatEntry;

const std::vector<FormatInfo>& formats() {
  static const std::vector<FormatInfo> infos = [] {
    std::vector<FormatInfo> v;
    for (const FormatEntry& e : formats_detail::registry()) v.push_back(e.info);
    return v;
  }();
  return infos;
}

const FormatInfo& format_by_name(const std::string& name) {
  return formats_detail::entry_by_name(name).info;
}

namespace {

std::string detect_format(const std::string& path,
                          std::optional<std::uint64_t> inflated_limit_bytes) {
  const std::string file = formats_detail::split_instance(path).file;
  const std::string extension = formats_detail::extension_of(file);
  if (extension != ".txt") {
    for (const FormatEntry& e : formats_detail::registry())
      for (const std::string& x : e.info.extensions)
        if (x == extension) return e.info.name;
  }
  if (!std::filesystem::exists(file))
    throw InvalidArgument("cannot tell the format of " + file + " from its extension '" +
                          extension + "' (and the file does not exist to look inside)");
  return formats_detail::sniff(file, extension, inflated_limit_bytes);
}

}  // namespace

std::string detect_format(const std::string& path) { return detect_format(path, std::nullopt); }

void ReadOptions::validate() const {
  if (instance < 1)
    throw InvalidArgument("ReadOptions::instance must be >= 1, got " + std::to_string(instance));
  if (memory_limit_bytes && *memory_limit_bytes == 0)
    throw InvalidArgument("ReadOptions::memory_limit_bytes must be > 0 when given");
  if (max_inflated_bytes && *max_inflated_bytes == 0)
    throw InvalidArgument("ReadOptions::max_inflated_bytes must be > 0 when given");
  if (!format.empty()) (void)format_by_name(format);
}

void WriteOptions::validate() const {
  if (precision < 0)
    throw InvalidArgument("WriteOptions::precision must be >= 0, got " + std::to_string(precision));
  if (penalty_weight && (!std::isfinite(*penalty_weight) || *penalty_weight < 0.0))
    throw InvalidArgument("WriteOptions::penalty_weight must be finite and >= 0");
  if (!std::isfinite(scale) || scale <= 0.0)
    throw InvalidArgument("WriteOptions::scale must be finite and > 0");
  for (const double angle : qaoa_gammas)
    if (!std::isfinite(angle)) throw InvalidArgument("WriteOptions::qaoa_gammas must be finite");
  for (const double angle : qaoa_betas)
    if (!std::isfinite(angle)) throw InvalidArgument("WriteOptions::qaoa_betas must be finite");
  for (const double shift : penalty_shifts)
    if (!std::isfinite(shift)) throw InvalidArgument("WriteOptions::penalty_shifts must be finite");
  if (!format.empty()) (void)format_by_name(format);
}

QuboModel read_model(const std::string& path, const ReadOptions& options) {
  options.validate();
  const formats_detail::InstancePath ip = formats_detail::split_instance(path);
  const std::string name =
      options.format.empty() ? detect_format(path, options.max_inflated_bytes) : options.format;
  const FormatEntry& entry = formats_detail::entry_by_name(name);
  if (!entry.info.can_read)
    throw InvalidArgument("format '" + entry.info.name + "' cannot be read");
  const int instance = ip.instance > 0 ? ip.instance : options.instance;
  if (instance != 1 && !entry.multi_instance)
    throw InvalidArgument("format '" + entry.info.name + "' holds one instance per file; " +
                          "instance " + std::to_string(instance) + " was asked for in " + path);
  // The inflated text counts against the memory limit too: without an explicit cap, a gzip
  // input may inflate to the smaller of the default cap and memory_limit_bytes.
  std::optional<std::uint64_t> inflated = options.max_inflated_bytes;
  if (!inflated && options.memory_limit_bytes) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(ip.file, ec);
    inflated = std::min<std::uint64_t>(
        *options.memory_limit_bytes,
        detail::default_inflated_limit_bytes(ec ? std::uint64_t{1} << 62 : size));
  }
  formats_detail::TextInput input = formats_detail::TextInput::open(ip.file, inflated);
  input.memory_limit_bytes = options.memory_limit_bytes;
  QuboModel model = entry.read(input, instance);
  // The qprune.* fields of the header comments (export's metadata), so that convert keeps them.
  for (auto& [key, value] : formats_detail::header_metadata(input.text()))
    model.metadata.emplace(key, std::move(value));
  if (model.metadata.find("source") == model.metadata.end()) model.metadata["source"] = ip.file;
  model.metadata["format"] = entry.info.name;
  if (entry.multi_instance) model.metadata["instance"] = std::to_string(instance);
  return model;
}

std::map<std::string, std::string> read_file_metadata(const std::string& path) {
  const formats_detail::InstancePath ip = formats_detail::split_instance(path);
  const formats_detail::TextInput in = formats_detail::TextInput::open(ip.file);
  const std::size_t first = in.text().find_first_not_of(" \t\r\n");
  if (first == std::string::npos || in.text()[first] != '{')
    return formats_detail::header_metadata(in.text());
  // JSON: the metadata object, read (and checked) by the JSON reader.
  ReadOptions options;
  options.format = "json";
  std::map<std::string, std::string> fields;
  for (auto& [key, value] : read_model(ip.file, options).metadata)
    if (key.starts_with("qprune.")) fields.emplace(key, std::move(value));
  return fields;
}

std::string write_format_for(const std::string& path, const std::string& format) {
  std::string name = format;
  if (name.empty()) {
    const std::string extension = formats_detail::extension_of(path);
    for (const FormatEntry& e : formats_detail::registry())
      for (const std::string& x : e.info.extensions)
        if (x == extension && e.info.can_write && name.empty()) name = e.info.name;
    if (name.empty())
      throw InvalidArgument("cannot tell the output format from the extension '" + extension +
                            "' of " + path + "; give the format explicitly");
  }
  const FormatEntry& entry = formats_detail::entry_by_name(name);
  if (!entry.info.can_write)
    throw InvalidArgument("format '" + entry.info.name +
                          "' is read-only; write qbsolv, coo, json, mqlib, maxcut, qplib, " +
                          "mtx, lp, lp-linear or mps instead");
  return entry.info.name;
}

bool format_holds_constraints(const std::string& name) {
  return formats_detail::entry_by_name(name).holds_constraints;
}

void write_model(const QuboModel& model, const std::string& path, const WriteOptions& options) {
  options.validate();
  const FormatEntry& entry = formats_detail::entry_by_name(write_format_for(path, options.format));
  // The Ising form needs a vartype in the file; of the writable formats only COO has one.
  if (options.spin && entry.info.name != "coo")
    throw InvalidArgument("format '" + entry.info.name +
                          "' cannot say that its variables are spins; write the Ising form as coo");
  formats_detail::WriteContext context;
  context.precision = options.precision;
  context.spin = options.spin;
  context.qaoa_gammas = options.qaoa_gammas;
  context.qaoa_betas = options.qaoa_betas;
  // The qprune.* fields (export's metadata: layer, unit, sparsity, ...) go into the header comments
  // of every format that has them; JSON keeps its whole metadata object anyway.
  for (const auto& [key, value] : model.metadata)
    if (key.starts_with("qprune."))
      context.notes.push_back(formats_detail::concat(key, "=", value));
  std::string text;
  // The scaled copy (energies times options.scale) says so, in the notes and, for JSON, in its
  // metadata object.
  const auto scaled = [&](const QuboModel& m) {
    QuboModel copy = m.scaled(options.scale);
    const std::string factor = formats_detail::number_text(options.scale, 17);
    copy.metadata["qprune.energy_scale"] = factor;
    context.notes.push_back("qprune.energy_scale=" + factor);
    return copy;
  };
  if (model.has_constraints() && !entry.holds_constraints) {
    const double w = options.penalty_weight.value_or(model.default_penalty_weight());
    const QuboModel plain = model.penalized(w, options.penalty_shifts);
    // The shifts are zero on feasible points (docs/pruning_math.md, "Penalty weight").
    context.notes.push_back(std::to_string(model.constraints().size()) +
                            " constraint groups added as the penalty w * (sum x - k)^2 + "
                            "shift_g * (sum x - k) with w=" +
                            formats_detail::number_text(w, 17) +
                            ", shifts=" + plain.metadata.at("penalty_shifts"));
    entry.write(options.scale != 1.0 ? scaled(plain) : plain, context, text);
  } else {
    entry.write(options.scale != 1.0 ? scaled(model) : model, context, text);
  }
  formats_detail::write_file_atomically(path, text);
}

}  // namespace qprune
