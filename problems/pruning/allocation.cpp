// Sparsity allocation (uniform keep counts, a greedy global allocation on diagonal costs) and the
// baseline masks every solver comparison must include (diagonal top-k, magnitude).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <queue>
#include <sstream>
#include <string>
#include <vector>

#include "qprune/error.hpp"
#include "qprune/pruning.hpp"

namespace qprune {

int round_keep_to_multiple(int keep, int num_units, int multiple_of) {
  if (num_units < 1) throw InvalidArgument("round_keep_to_multiple: num_units must be >= 1");
  if (multiple_of < 1)
    throw InvalidArgument("--multiple-of must be >= 1, is " + std::to_string(multiple_of));
  if (multiple_of > num_units)
    throw InvalidArgument("--multiple-of " + std::to_string(multiple_of) + " exceeds the " +
                          std::to_string(num_units) +
                          " units of a layer: no positive multiple of it can be kept");
  if (keep < 0 || keep > num_units)
    throw InvalidArgument("round_keep_to_multiple: keep " + std::to_string(keep) + " out of [0, " +
                          std::to_string(num_units) + "]");
  // Nearest multiple, a tie (even N, keep N/2 past a multiple) rounded up: keep more.
  int k = (keep + multiple_of / 2) / multiple_of * multiple_of;
  k = std::max(k, multiple_of);                                  // never 0
  if (k > num_units) k = num_units / multiple_of * multiple_of;  // largest multiple <= n
  return k;
}

int keep_count(int num_units, double sparsity, int granularity, int multiple_of) {
  if (num_units < 1) throw InvalidArgument("keep_count: num_units must be >= 1");
  if (granularity < 1 || num_units % granularity != 0) {
    throw InvalidArgument("keep_count: granularity " + std::to_string(granularity) +
                          " must be >= 1 and divide num_units " + std::to_string(num_units));
  }
  if (!(sparsity >= 0.0 && sparsity < 1.0)) {
    throw InvalidArgument("keep_count: sparsity must be in [0, 1), is " + std::to_string(sparsity));
  }
  const int k = static_cast<int>(std::lround((1.0 - sparsity) * num_units));
  if (multiple_of < 1)
    throw InvalidArgument("--multiple-of must be >= 1, is " + std::to_string(multiple_of));
  if (multiple_of > 1) {
    // Rounded to a multiple of both (every KV group keeps the same number of heads).
    return round_keep_to_multiple(k, num_units, std::lcm(granularity, multiple_of));
  }
  if (k == 0) {
    throw InvalidArgument("keep_count: sparsity " + std::to_string(sparsity) +
                          " leaves no unit of " + std::to_string(num_units) +
                          " (largest usable sparsity: " +
                          std::to_string(1.0 - static_cast<double>(granularity) / num_units) + ")");
  }
  if (k % granularity != 0) {
    const int lo = k / granularity * granularity;
    const int hi = lo + granularity;
    std::ostringstream msg;
    msg << "keep_count: sparsity " << sparsity << " keeps " << k << " of " << num_units
        << " units, not a multiple of " << granularity
        << " (every KV group must keep the same number of heads); nearest expressible sparsities: ";
    if (lo > 0) msg << 1.0 - static_cast<double>(lo) / num_units << " (keep " << lo << "), ";
    msg << 1.0 - static_cast<double>(hi) / num_units << " (keep " << hi << ")";
    throw InvalidArgument(msg.str());
  }
  return k;
}

int uniform_keep(const LayerProblem& problem, double sparsity) {
  return keep_count(problem.num_units(), sparsity, problem.num_groups);
}

void GlobalAllocationOptions::validate() const {
  if (!(sparsity >= 0.0 && sparsity < 1.0)) {
    throw InvalidArgument("GlobalAllocationOptions::sparsity must be in [0, 1), is " +
                          std::to_string(sparsity));
  }
  if (!(max_layer_sparsity >= 0.0 && max_layer_sparsity <= 1.0)) {
    throw InvalidArgument("GlobalAllocationOptions::max_layer_sparsity must be in [0, 1], is " +
                          std::to_string(max_layer_sparsity));
  }
  if (multiple_of < 1)
    throw InvalidArgument("GlobalAllocationOptions::multiple_of (--multiple-of) must be >= 1, is " +
                          std::to_string(multiple_of));
}

LayerUnitCosts LayerUnitCosts::of(const LayerProblem& problem) {
  return {problem.unit_cost, problem.model.offset(), problem.num_groups};
}

GlobalAllocation allocate_global(const std::vector<const LayerProblem*>& problems,
                                 const GlobalAllocationOptions& options) {
  if (problems.empty()) throw InvalidArgument("allocate_global: no problems");
  std::vector<LayerUnitCosts> layers;
  layers.reserve(problems.size());
  for (const LayerProblem* p : problems) {
    if (p == nullptr) throw InvalidArgument("allocate_global: null problem");
    if (p->unit != problems.front()->unit) {
      throw InvalidArgument("allocate_global: all problems must prune the same kind of unit");
    }
    layers.push_back(LayerUnitCosts::of(*p));
  }
  return allocate_global_costs(layers, options);
}

double removal_cost(const LayerUnitCosts& layer, int keep) {
  const int n = static_cast<int>(layer.unit_cost.size());
  const int groups = layer.num_groups;
  if (n < 1 || groups < 1 || n % groups != 0 || keep < 0 || keep > n || keep % groups != 0)
    throw InvalidArgument("removal_cost: keep " + std::to_string(keep) + " of " +
                          std::to_string(n) + " units in " + std::to_string(groups) +
                          " groups (need 0 <= keep <= n, multiples of the groups)");
  const int per_group = n / groups;
  const int removed = (n - keep) / groups;
  double cost = 0.0;
  for (int g = 0; g < groups; ++g) {
    const std::ptrdiff_t begin = static_cast<std::ptrdiff_t>(g) * per_group;
    std::vector<double> c(layer.unit_cost.data() + begin,
                          layer.unit_cost.data() + begin + per_group);
    std::partial_sort(c.begin(), c.begin() + removed, c.end());
    cost = std::accumulate(c.begin(), c.begin() + removed, cost);
  }
  return cost;
}

GlobalAllocation allocate_global_costs(const std::vector<LayerUnitCosts>& layers,
                                       const GlobalAllocationOptions& options) {
  options.validate();
  if (layers.empty()) throw InvalidArgument("allocate_global: no layers");
  const std::size_t num_layers = layers.size();
  // Per layer: the removal blocks, cheapest first. A unit step removes `groups` units: one unit,
  // or for kHeadsPerGroup one head from every group (the cheapest remaining one of each group).
  // A block is q = lcm(groups, multiple_of) units (q / groups consecutive steps), so that every
  // count left is a multiple of q; when n is not a multiple of q, the first n mod q units are a
  // forced removal (the layer's largest multiple of q), charged before any block.
  std::vector<std::vector<double>> block_costs(num_layers);
  std::vector<int> block_size(num_layers), forced(num_layers), max_blocks(num_layers);
  int total_units = 0, total_forced = 0;
  GlobalAllocation result;
  for (std::size_t l = 0; l < num_layers; ++l) {
    const LayerUnitCosts& p = layers[l];
    const int n = static_cast<int>(p.unit_cost.size());
    const int groups = p.num_groups;
    if (n < 1 || groups < 1 || n % groups != 0) {
      throw InvalidArgument("allocate_global: layer " + std::to_string(l) + " has " +
                            std::to_string(n) + " units in " + std::to_string(groups) +
                            " groups (need n >= 1, a multiple of the groups)");
    }
    const int q = std::lcm(groups, options.multiple_of);
    if (q > n)
      throw InvalidArgument("--multiple-of " + std::to_string(options.multiple_of) +
                            " exceeds the " + std::to_string(n) + " units of layer " +
                            std::to_string(l) + " (blocks of " + std::to_string(q) +
                            "): no positive multiple of it can be kept");
    const int per_group = n / groups;
    double scale = 1.0;
    if (options.scale == CostScale::kRelativeToLayerOutput) {
      const double total = p.total_cost;  // 1^T M 1: error of removing every unit
      scale = total > 0.0 ? 1.0 / total : 1.0;
    }
    std::vector<double> steps(static_cast<std::size_t>(per_group), 0.0);
    for (int g = 0; g < groups; ++g) {
      const std::ptrdiff_t begin = static_cast<std::ptrdiff_t>(g) * per_group;
      std::vector<double> c(p.unit_cost.data() + begin, p.unit_cost.data() + begin + per_group);
      std::sort(c.begin(), c.end());
      for (int t = 0; t < per_group; ++t)
        steps[static_cast<std::size_t>(t)] += scale * c[static_cast<std::size_t>(t)];
    }
    const int largest = n / q * q;  // the most a layer can keep
    forced[l] = n - largest;
    const int forced_steps = forced[l] / groups, steps_per_block = q / groups;
    for (int t = 0; t < forced_steps; ++t)
      result.removed_cost += steps[static_cast<std::size_t>(t)];
    for (int t = forced_steps; t + steps_per_block <= per_group; t += steps_per_block) {
      block_costs[l].push_back(
          std::accumulate(steps.begin() + t, steps.begin() + t + steps_per_block, 0.0));
    }
    block_size[l] = q;
    // At least one block stays, and at most max_layer_sparsity goes (unless the layer's largest
    // multiple of q is already below that: then it keeps that multiple).
    int min_keep = static_cast<int>(std::ceil((1.0 - options.max_layer_sparsity) * n - 1e-9));
    min_keep = std::min(largest, std::max(q, (min_keep + q - 1) / q * q));
    max_blocks[l] = (largest - min_keep) / q;
    total_units += n;
    total_forced += forced[l];
  }
  const int budget = static_cast<int>(std::lround(options.sparsity * total_units));
  result.total_units = total_units;
  result.budget = budget;

  // What the blocks must remove. multiple_of 1: exactly the budget (the historical rule). Else,
  // with one block size q for every layer, the removable totals are total_forced + q s for
  // s = 0 .. sum max_blocks; the one nearest the budget is taken (a tie keeps more), and only a
  // shortfall of more than half a block is an error.
  int remaining = budget;
  if (options.multiple_of > 1) {
    const int q = block_size.front();
    for (std::size_t l = 1; l < num_layers; ++l)
      if (block_size[l] != q)
        throw InvalidArgument(
            "allocate_global: --multiple-of needs the same block size in every "
            "layer (layer " +
            std::to_string(l) + ": " + std::to_string(block_size[l]) +
            " units, layer 0: " + std::to_string(q) + ")");
    const int capacity = std::accumulate(max_blocks.begin(), max_blocks.end(), 0);
    const int want = budget - total_forced;
    int blocks = want <= 0 ? 0 : (want + (q - 1) / 2) / q;  // nearest, ties (even q) down
    blocks = std::min(blocks, capacity);
    if (2 * (want - blocks * q) > q)
      throw InvalidArgument("allocate_global: cannot remove " + std::to_string(budget) + " of " +
                            std::to_string(total_units) + " units within max_layer_sparsity " +
                            std::to_string(options.max_layer_sparsity) + " in blocks of " +
                            std::to_string(q) + " (at most " +
                            std::to_string(total_forced + capacity * q) + ")");
    remaining = blocks * q;
  }

  // Block costs within a layer are non-decreasing (sums of consecutive sorted costs), so taking
  // the globally cheapest next block (per unit removed) is the optimum of the separable diagonal
  // objective when every block has the same size.
  using Entry = std::pair<double, std::size_t>;  // (cost per unit of the layer's next block, layer)
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> queue;
  std::vector<int> taken(num_layers, 0);
  for (std::size_t l = 0; l < num_layers; ++l)
    if (max_blocks[l] > 0) queue.push({block_costs[l][0] / block_size[l], l});
  while (remaining > 0 && !queue.empty()) {
    const std::size_t l = queue.top().second;
    queue.pop();
    if (block_size[l] > remaining) continue;  // this layer's blocks no longer fit: it is done
    result.removed_cost += block_costs[l][static_cast<std::size_t>(taken[l])];
    remaining -= block_size[l];
    if (++taken[l] < max_blocks[l]) {
      queue.push({block_costs[l][static_cast<std::size_t>(taken[l])] / block_size[l], l});
    }
  }
  if (remaining > 0) {
    throw InvalidArgument("allocate_global: cannot remove " + std::to_string(budget) + " of " +
                          std::to_string(total_units) + " units within max_layer_sparsity " +
                          std::to_string(options.max_layer_sparsity) +
                          " and the per-group granularity (" + std::to_string(remaining) +
                          " left over)");
  }
  for (std::size_t l = 0; l < num_layers; ++l) {
    const int n = static_cast<int>(layers[l].unit_cost.size());
    const int k = n - forced[l] - taken[l] * block_size[l];
    result.keep.push_back(k);
    result.sparsity.push_back(1.0 - static_cast<double>(k) / n);
    result.total_keep += k;
  }
  return result;
}

Assignment keep_top_scores(const LayerProblem& problem, const Eigen::VectorXd& scores) {
  const int n = problem.num_units();
  if (scores.size() != n) {
    throw InvalidArgument("keep_top_scores: " + std::to_string(scores.size()) + " scores for " +
                          std::to_string(n) + " units");
  }
  if (!problem.model.has_constraints()) {
    throw InvalidArgument("keep_top_scores: " + problem.name +
                          " has no keep constraint (set_keep)");
  }
  Assignment keep(static_cast<std::size_t>(n), 0);
  for (const CardinalityConstraint& c : problem.model.constraints()) {
    std::vector<int> order = c.variables;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
    });
    for (int t = 0; t < c.k; ++t)
      keep[static_cast<std::size_t>(order[static_cast<std::size_t>(t)])] = 1;
  }
  return keep;
}

Assignment diagonal_top_k(const LayerProblem& problem) {
  return keep_top_scores(problem, problem.unit_cost);
}

Eigen::VectorXd magnitude_scores(const Eigen::MatrixXd& w, int unit_width) {
  if (unit_width < 1 || w.cols() % unit_width != 0) {
    throw InvalidArgument("magnitude_scores: unit_width " + std::to_string(unit_width) +
                          " must be >= 1 and divide the " + std::to_string(w.cols()) + " columns");
  }
  const Eigen::VectorXd col = w.colwise().squaredNorm().transpose();
  return col.reshaped(unit_width, w.cols() / unit_width).colwise().sum().transpose();
}

Eigen::VectorXd magnitude_scores(const Eigen::MatrixXd& w_down, const Eigen::MatrixXd& w_gate,
                                 const Eigen::MatrixXd& w_up) {
  if (w_gate.rows() != w_down.cols() || w_up.rows() != w_down.cols() ||
      w_gate.cols() != w_up.cols()) {
    throw InvalidArgument("magnitude_scores: w_gate and w_up must be n x D with n = w_down.cols()");
  }
  return w_down.colwise().squaredNorm().transpose().cwiseProduct(
      w_gate.rowwise().squaredNorm().cwiseProduct(w_up.rowwise().squaredNorm()));
}

}  // namespace qprune
