// The library's options structs validate themselves and name the violated field the library's way
// (`MaskRunOptions::sparsity must be in [0, 1)`), which is right for a library caller but not for
// someone who typed `--sparsity 1`. This is the one place that says which flag sets which field:
// every error the CLI prints goes through translate_option_names (cli/main.cpp), so a validate()
// message reaches the user naming the flag. A field without a flag keeps its library name.
#pragma once
#ifdef QPRUNE_LAYER
#error "cli/option_names.hpp is part of the cli program; no library layer may include it"
#endif

#include <string>
#include <string_view>

namespace qprune::cli {

struct OptionName {
  std::string_view field;  ///< as the library's messages write it: Struct::field or Struct.field
  std::string_view flag;   ///< the flag that sets it
};

// Fields that no flag sets (memory limits, the refit search's internals, ...) are absent on
// purpose; tests/test_option_names.cpp lists them and fails when a validate() message names a field
// that is in neither list.
inline constexpr OptionName kOptionNames[] = {
    // solve / mask / compare / prune: the common solver options (cli/solver_options.cpp)
    {"SolveOptions::time_limit_s", "--time-limit"},
    {"SolveOptions::num_reads", "--reads"},
    {"SolveOptions::max_samples", "--samples"},
    {"SolveOptions::target_energy", "--target-energy"},
    {"SolveOptions::penalty_weight", "--penalty-weight"},
    {"SolveOptions::seed", "--seed"},
    {"AnnealOptions::num_sweeps", "--sweeps"},
    {"AnnealOptions::beta_range", "--beta-range"},
    {"AnnealOptions::precision", "--precision"},
    {"TabuOptions::tenure_divisor", "--tabu-tenure-divisor"},
    {"TabuOptions::tenure_random", "--tabu-tenure-random"},
    {"TabuOptions::stall_iterations", "--tabu-stall"},
    {"TabuOptions::max_iterations", "--tabu-iterations"},
    {"TabuOptions::elite_size", "--tabu-elite"},
    {"TabuOptions::method", "--tabu-method"},
    {"TabuOptions::breakout_jump_min_fraction", "--breakout-jump-min"},
    {"TabuOptions::breakout_jump_max_fraction", "--breakout-jump-max"},
    {"TabuOptions::breakout_stall", "--breakout-stall"},
    {"QaoaOptions::layers", "--qaoa-layers"},
    {"QaoaOptions::gammas", "--gammas"},
    {"QaoaOptions::betas", "--betas"},
    {"QaoaOptions::max_evaluations", "--qaoa-evaluations"},
    {"QaoaOptions::ftol_rel", "--qaoa-ftol"},
    {"QaoaOptions::shots", "--qaoa-shots"},
    {"QaoaOptions::max_qubits", "--qaoa-max-qubits"},
    {"QaoaOptions::decomposition_rounds", "--qaoa-rounds"},
    {"QaoaOptions::subproblem_qubits", "--qaoa-subproblem-qubits"},
    {"QaoaOptions::stall_rounds", "--qaoa-stall"},
    {"QaoaOptions::warm_epsilon", "--qaoa-warm-epsilon"},
    {"QaoaOptions::transfer_evaluations", "--qaoa-transfer-evaluations"},
    {"QaoaOptions::precision", "--qaoa-precision"},
    {"GreedyOptions::max_moves_per_read", "--greedy-max-moves"},
    {"ExactOptions::max_variables", "--exact-max-variables"},
    // compare
    {"ComparisonOptions::solvers", "--solvers"},
    {"ComparisonOptions::num_seeds", "--seeds"},
    {"ComparisonOptions::jobs", "--jobs"},
    {"ComparisonOptions::threads_per_run", "--threads-per-run"},
    {"ComparisonOptions::tolerance", "--tolerance-rel / --tolerance-abs"},
    // mask
    {"MaskRunOptions::sparsity", "--sparsity"},
    {"MaskRunOptions::head_sparsity", "--head-sparsity"},
    {"MaskRunOptions::head_shape", "--head-shape"},
    {"MaskRunOptions::allocation", "--allocation"},
    {"MaskRunOptions::max_layer_sparsity", "--max-layer-sparsity"},
    {"MaskRunOptions::behaviour_weight", "--behaviour-weight"},
    {"MaskRunOptions::method", "--method"},
    {"GlobalAllocationOptions::sparsity", "--sparsity"},
    {"GlobalAllocationOptions::max_layer_sparsity", "--max-layer-sparsity"},
    {"GlobalAllocationOptions::multiple_of", "--multiple-of"},
    // export
    {"MlpProblemOptions::layer", "--layer"},
    {"HeadProblemOptions::layer", "--layer"},
    {"HeadProblemOptions::units", "--head-shape"},
    {"WriteOptions::penalty_weight", "--penalty-weight"},
    {"TunedPenaltyOptions::search_time_s", "--tuning-time"},
    {"WriteOptions::qaoa_gammas", "--qaoa-gammas"},
    {"ExportOptions::scale_to", "--scale-to"},
    {"WriteOptions::qaoa_betas", "--qaoa-betas"},
    // apply / prune output
    {"CheckpointWriteOptions::overwrite", "--overwrite"},
    // prune
    {"RefitOptions::damping_rel", "--damping"},
    {"RefitSearchOptions::iterations", "--search-iterations"},
    {"RefitSearchOptions::sweeps", "--search-sweeps"},
    // calibrate / perplexity (cli/token_input.cpp)
    {"CalibrationOptions.context", "--context"},
    {"CalibrationOptions.max_tokens", "--tokens"},
    {"CalibrationOptions.windows_per_batch", "--batch"},
    {"CalibrationOptions.batches_per_chunk", "--chunk"},
    {"PerplexityOptions.context", "--context"},
    {"PerplexityOptions.max_tokens", "--tokens"},
    {"PerplexityOptions.windows_per_batch", "--batch"},
    // ablate-direction
    {"AblationOptions::layer", "--layer"},
    {"AblationOptions::context", "--context"},
    {"AblationOptions::max_tokens", "--tokens"},
};

/// `message` with every library field name of kOptionNames replaced by its flag. A name counts
/// only as a whole token (not followed by another identifier character), so `QaoaOptions::layers`
/// does not rewrite a longer field that starts the same way.
[[nodiscard]] inline std::string translate_option_names(std::string message) {
  const auto ident = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  for (const OptionName& n : kOptionNames) {
    std::size_t at = 0;
    while ((at = message.find(n.field, at)) != std::string::npos) {
      const std::size_t end = at + n.field.size();
      if ((end < message.size() && ident(message[end])) || (at > 0 && ident(message[at - 1]))) {
        at = end;
        continue;
      }
      message.replace(at, n.field.size(), n.flag);
      at += n.flag.size();
    }
  }
  return message;
}

}  // namespace qprune::cli
