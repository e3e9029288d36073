// Umbrella header: the whole public API of qprune, every header of include/qprune/
// (tests/layering.sh checks that none is left out). Layers, bottom up: core (error, atomic_output,
// interrupt, job_runner, run_status), problems, solvers, workflows; README "Architecture".
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 4
#error \
    "include/qprune/qprune.hpp is in the workflows layer; a lower layer (core, problems, solver) may not include it"
#endif

#include "qprune/anneal_solver.hpp"
#include "qprune/atomic_output.hpp"
#include "qprune/calibration.hpp"
#include "qprune/calibration_stats.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/checkpoint_problems.hpp"
#include "qprune/comparison.hpp"
#include "qprune/error.hpp"
#include "qprune/exact_solver.hpp"
#include "qprune/formats.hpp"
#include "qprune/gguf.hpp"
#include "qprune/greedy_solver.hpp"
#include "qprune/interrupt.hpp"
#include "qprune/job_runner.hpp"
#include "qprune/layer_instance.hpp"
#include "qprune/masks.hpp"
#include "qprune/model_config.hpp"
#include "qprune/prune_pipeline.hpp"
#include "qprune/pruning.hpp"
#include "qprune/pruning_refit.hpp"
#include "qprune/qaoa_solver.hpp"
#include "qprune/qubo_model.hpp"
#include "qprune/random_solver.hpp"
#include "qprune/refit_objective.hpp"
#include "qprune/refit_search.hpp"
#include "qprune/run_status.hpp"
#include "qprune/sequential_pruning.hpp"
#include "qprune/solver.hpp"
#include "qprune/solvers.hpp"
#include "qprune/tabu_solver.hpp"
#include "qprune/tokenizer.hpp"
#include "qprune/transformer.hpp"
#include "qprune/tuned_penalty.hpp"
#include "qprune/unit_kind.hpp"
