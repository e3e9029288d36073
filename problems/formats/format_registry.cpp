// PLACEHOLDER (replaced by the formats branch in this session).
#include "qprune/error.hpp"
#include "qprune/formats.hpp"
namespace qprune {
QuboModel read_model(const std::string&, const ReadOptions&) { throw Error("not yet"); }
void write_model(const QuboModel&, const std::string&, const WriteOptions&) { throw Error("not yet"); }
const std::vector<FormatInfo>& formats() { static std::vector<FormatInfo> f; return f; }
const FormatInfo& format_by_name(const std::string&) { throw Error("not yet"); }
std::string detect_format(const std::string&) { throw Error("not yet"); }
Assignment read_solution(const std::string&, int) { throw Error("not yet"); }
void write_solution(const Assignment&, const std::string&) { throw Error("not yet"); }
}  // namespace qprune
