// Structure-aware mutations for the fuzz targets: the changes a byte-level mutator with a
// dictionary practically never makes, because each needs thousands of coordinated edits. They are
// the shapes of known defect classes: JSON nested 10^5 deep (recursive dump(), parsers with no
// depth limit), one key or element repeated 10^4 times (quadratic header parsing), huge declared
// sizes in the header of a text QUBO format (allocation from a declared size), many repeated
// lines, and gzip members that inflate to gigabytes (bombs). libFuzzer calls mutate() through
// LLVMFuzzerCustomMutator (fuzz_target.cpp); it falls back to libFuzzer's own mutation most of
// the time, so the byte-level search goes on as before.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace qprune::fuzz {

using Rng = std::minstd_rand;

/// libFuzzer's own mutation of a string (grows it up to `max_size`); defined in mutators.cpp via
/// LLVMFuzzerMutate.
[[nodiscard]] std::string byte_mutate(std::string text, std::size_t max_size);

/// JSON-shaped mutation: wrap a value in N levels of [ ] or {"a": }, repeat a member or element
/// K times (keys made unique), insert a long string or number, put an edge number in place of one.
[[nodiscard]] std::optional<std::string> mutate_json(const std::string& text, std::size_t max_size,
                                                     Rng& rng);
/// Safetensors: the header (after the 8-byte length) mutated as JSON or as bytes, the length
/// rewritten to match so the mutated header is parsed instead of refused at byte 0.
[[nodiscard]] std::optional<std::string> mutate_safetensors(const std::string& bytes,
                                                            std::size_t max_size, Rng& rng);
/// Text QUBO formats: an integer of the first lines (where the sizes are declared) replaced by a
/// huge value, or a block of lines repeated K times.
[[nodiscard]] std::optional<std::string> mutate_text(const std::string& text, std::size_t max_size,
                                                     Rng& rng);
/// Gzip input: the inflated text mutated (as text) and deflated again, or a bomb member (about
/// 1 MB that inflates to 1.5 GiB of newlines) appended.
[[nodiscard]] std::optional<std::string> mutate_gzip(const std::string& bytes, std::size_t max_size,
                                                     Rng& rng);
/// A `checkpoint` input (fuzz_readers.hpp: parts joined by kCheckpointPartSeparator): one part
/// mutated by its own kind (JSON for config and index, safetensors for shards), framing kept.
[[nodiscard]] std::optional<std::string> mutate_checkpoint(const std::string& bytes,
                                                           std::size_t max_size, Rng& rng);

/// The structure-aware mutation for `target`, or nullopt to use libFuzzer's own mutation.
[[nodiscard]] std::optional<std::string> mutate(std::string_view target, const std::string& input,
                                                std::size_t max_size, Rng& rng);

}  // namespace qprune::fuzz
