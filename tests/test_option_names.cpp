// cli/option_names.hpp: library field names in error messages become the flags a CLI user typed.
// Besides examples, one check keeps the table honest: every `XOptions::field` (or `.field`) that a
// message in problems/ or solver/ can name is either translated or listed here as set by no flag,
// so a new validate() message cannot reach the CLI with a library name unnoticed.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "cli/option_names.hpp"
#include "tests/test_files.hpp"

using qprune::cli::translate_option_names;

TEST_CASE("translate_option_names: library fields become flags, whole tokens only") {
  CHECK(translate_option_names("MaskRunOptions::sparsity must be in [0, 1), is 1.000000") ==
        "--sparsity must be in [0, 1), is 1.000000");
  CHECK(translate_option_names("AnnealOptions::beta_range must be (hot, cold)") ==
        "--beta-range must be (hot, cold)");
  CHECK(translate_option_names("CalibrationOptions.context must be >= 1, got 0") ==
        "--context must be >= 1, got 0");
  CHECK(translate_option_names("QaoaOptions::warm_epsilon must be in (0, 0.5], got 0") ==
        "--qaoa-warm-epsilon must be in (0, 0.5], got 0");
  // Two in one message, and text around them kept.
  CHECK(translate_option_names("x (ExactOptions::max_variables); TabuOptions::elite_size y") ==
        "x (--exact-max-variables); --tabu-elite y");
  // A longer field that starts like a known one is not touched; nor is an unknown field.
  CHECK(translate_option_names("QaoaOptions::layers_x") == "QaoaOptions::layers_x");
  CHECK(translate_option_names("ReadOptions::memory_limit_bytes") ==
        "ReadOptions::memory_limit_bytes");
  CHECK(translate_option_names("plain text") == "plain text");
}

TEST_CASE("every options field a library message names is translated or known to have no flag") {
  // Set by no flag of the CLI: library callers only.
  const std::set<std::string> library_only = {
      "HeadProblemOptions::keep", "MlpProblemOptions::keep",
      "HeadProblemOptions::memory_limit_bytes", "MlpProblemOptions::memory_limit_bytes",
      "SolveOptions::memory_limit_bytes",
      // set by `solve` only with a finite --time-limit
      "SolveOptions::reads_until_time_limit", "ReadOptions::memory_limit_bytes",
      "ReadOptions::instance", "ReadOptions::max_inflated_bytes", "WriteOptions::precision",
      "WriteOptions::penalty_shifts", "TunedPenaltyOptions::verify_rounds", "WriteOptions::scale",
      "RefitSearchOptions::max_enumerated", "RefitSearchOptions::rebuild_every",
      "RefitSearchOptions::tenure", "RefitSearchOptions::time_limit_s",
      "RefitSearchOptions::tolerance_rel", "TabuOptions::perturbation_fraction",
      "TabuOptions::max_perturbation_fraction", "TabuOptions::relink_probability",
      "QaoaOptions::ramp_dt", "QaoaOptions::xtol_rel",
      // ablate-direction sets no batch size (the library default)
      "AblationOptions::windows_per_batch"};
  std::set<std::string> table;
  for (const auto& n : qprune::cli::kOptionNames) table.insert(std::string(n.field));
  const std::filesystem::path root = std::filesystem::path(QPRUNE_TEST_DATA) / ".." / "..";
  // "XOptions::field" inside a string literal, and the `fail("field ...")` helpers of the
  // validate() functions that prefix "XOptions::" themselves.
  const std::regex named(R"re("[^"\n]*?\b([A-Z][A-Za-z]*Options(::|\.)[a-z_]+))re");
  const std::regex prefixed(R"re(InvalidArgument\("([A-Z][A-Za-z]*Options)::" \+ what\))re");
  const std::regex helper(R"re(\bfail\("([a-z_]+) )re");
  int found = 0;
  for (const char* dir : {"problems", "solver"}) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root / dir)) {
      if (entry.path().extension() != ".cpp") continue;
      std::ifstream in(entry.path());
      std::stringstream ss;
      ss << in.rdbuf();
      const std::string text = ss.str();
      std::set<std::string> fields;
      for (std::sregex_iterator it(text.begin(), text.end(), named), end; it != end; ++it)
        fields.insert((*it)[1]);
      std::smatch p;
      if (std::regex_search(text, p, prefixed)) {
        const std::string prefix = p[1];
        for (std::sregex_iterator it(text.begin(), text.end(), helper), end; it != end; ++it)
          fields.insert(prefix + "::" + std::string((*it)[1]));
      }
      for (const std::string& f : fields) {
        ++found;
        INFO(entry.path().string() << ": " << f);
        CHECK((table.count(f) == 1 || library_only.count(f) == 1));
      }
    }
  }
  CHECK(found >= 50);  // the scan really saw the validate() messages
}
