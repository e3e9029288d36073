#!/usr/bin/env python3
"""Issue 22 goal: the 256-variable expert QUBO of a DeepSeek-V3-shaped MoE layer solved by sa and
tabu in under 1 s. The Gram is synthetic: T tokens each routed to the top-8 of 256 experts by
random router logits (DeepSeek-V3: 8 of 256), with the chosen experts' weighted outputs random
vectors of a shared low-rank structure (so experts overlap as real ones do), G_ef = sum_t
<c_e(t), c_f(t)>. The problem is qprune's expert QUBO, E(x) = (1 - x)^T G (1 - x) with keep k, as
`mask --unit experts` builds it (build_expert_problem): linear G_ee - 2 (G 1)_e, couplings 2 G_ef.
Solved at the default settings (one read) and with 10 reads; medians of REPEATS runs, the exact
optimum unknown (C(256, 128) subsets), so the table compares sa, tabu and greedy objectives.

Usage: PYTHONPATH=build/python /usr/bin/python3 bench/expert_qubo_256.py [TOKENS] [REPEATS]
"""
import statistics
import sys
import time

import numpy as np

import qprune


def synthetic_gram(experts=256, top_k=8, tokens=20000, hidden=7168, rank=64, seed=1):
    rng = np.random.default_rng(seed)
    # Expert outputs live in a rank-`rank` subspace of the hidden space, so their inner products
    # are what matters: work in that subspace (same Gram as the full hidden vectors).
    basis_coeff = rng.normal(size=(experts, rank)) / np.sqrt(rank)
    logits = rng.normal(size=(tokens, experts)) + rng.normal(size=experts)  # popular experts
    chosen = np.argpartition(-logits, top_k, axis=1)[:, :top_k]
    weights = 1 / (1 + np.exp(-np.take_along_axis(logits, chosen, axis=1)))
    weights /= weights.sum(axis=1, keepdims=True)
    gram = np.zeros((experts, experts))
    for t0 in range(0, tokens, 2000):
        c = chosen[t0:t0 + 2000]
        w = weights[t0:t0 + 2000]
        # token-specific output = expert direction + token noise, times the routing weight
        out = basis_coeff[c] + 0.3 * rng.normal(size=(len(c), top_k, rank)) / np.sqrt(rank)
        out *= w[:, :, None]
        dots = np.einsum("tir,tjr->tij", out, out)
        np.add.at(gram, (c[:, :, None], c[:, None, :]), dots)
    return gram


def main():
    tokens = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    g = synthetic_gram(tokens=tokens)
    n = g.shape[0]
    keep = n // 2
    # E(x) = 1^T G 1 + sum_e (G_ee - 2 (G 1)_e) x_e + sum_{e<f} 2 G_ef x_e x_f, dimod form.
    q = np.triu(2 * g, 1)
    q[np.diag_indices(n)] = np.diag(g) - 2 * g.sum(axis=1)
    offset = g.sum()
    group = [(list(range(n)), keep)]
    print(f"synthetic expert Gram: {n} experts, top-8 routing over {tokens} tokens; keep {keep}")
    print("| solver | reads | median seconds | best objective (relative to all removed) |")
    print("|---|---|---|---|")
    for name, sampler, kw in [("sa", qprune.SimulatedAnnealingSampler(), {}),
                              ("tabu", qprune.TabuSampler(), {}),
                              ("tabu, time_limit 0.5 s", qprune.TabuSampler(), {"time_limit": 0.5}),
                              ("greedy", qprune.GreedySampler(), {})]:
        for reads in ((1,) if "time_limit" in kw else (1, 10)):
            times, energies = [], []
            for r in range(repeats):
                t0 = time.perf_counter()
                ss = sampler.sample_qubo(q, offset=offset, constraints=group, num_reads=reads,
                                         seed=r + 1, **kw)
                times.append(time.perf_counter() - t0)
                energies.append(ss.first.energy)
            print(f"| {name} | {reads} | {statistics.median(times):.3f} | "
                  f"{min(energies) / offset:.6f} |")


if __name__ == "__main__":
    main()
