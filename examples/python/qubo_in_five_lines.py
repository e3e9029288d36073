"""A QUBO in five lines: E(x) = x^T Q x over x in {0,1}^3, solved by simulated annealing."""
import numpy as np
import qprune

Q = np.array([[-1.0, 2.0, 0.0], [0.0, -1.0, 2.0], [0.0, 0.0, -1.0]])
print(qprune.SimulatedAnnealingSampler().sample_qubo(Q, num_reads=10, seed=1).first)
