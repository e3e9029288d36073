// PLACEHOLDER (to be replaced in this session).
#include "qprune/formats.hpp"
#include "qprune/error.hpp"
namespace qprune {
QuboModel read_model(const std::string&, const ReadOptions&) { throw Error("not yet"); }
}
