// Umbrella header: the whole public API of qprune.
#pragma once

#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"
#include "qprune/formats.hpp"
#include "qprune/layer_instance.hpp"
#include "qprune/model_config.hpp"
#include "qprune/pruning.hpp"
#include "qprune/pruning_refit.hpp"
#include "qprune/qubo_model.hpp"
#include "qprune/solver.hpp"
#include "qprune/solvers.hpp"
