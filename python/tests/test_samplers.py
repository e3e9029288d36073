"""The samplers against independent references: brute-force enumeration in numpy, the Ising form
against the QUBO form, energies recomputed in numpy, and bad inputs refused with clear errors."""

import itertools
import os
import signal
import threading
import time

import numpy as np
import pytest

import qprune

SAMPLERS = [qprune.SimulatedAnnealingSampler, qprune.TabuSampler, qprune.ExactSolver,
            qprune.GreedySampler, qprune.QAOASampler]
# Enough work for the heuristics to find the optimum of an 8-variable problem for certain.
WORK = {"sa": {"num_reads": 20}, "tabu": {"num_reads": 4, "tabu_iterations": 2000},
        "exact": {}, "greedy": {"num_reads": 64}, "qaoa": {}}


def all_assignments(n):
    return np.array(list(itertools.product((0, 1), repeat=n)), dtype=np.int8)


def qubo_energies(Q, X, offset=0.0):
    """E(x) = offset + x^T Q x for every row of X (dimod's dense convention)."""
    X = X.astype(np.float64)
    return offset + np.einsum("ki,ij,kj->k", X, Q, X)


def random_qubo(rng, n, integer=False):
    Q = rng.normal(size=(n, n))
    if integer:
        Q = np.round(4 * Q)
    return Q


@pytest.mark.parametrize("sampler_class", SAMPLERS)
@pytest.mark.parametrize("trial", range(3))
def test_every_sampler_finds_the_brute_force_optimum(sampler_class, trial):
    rng = np.random.default_rng(100 + trial)
    n = 8
    Q = random_qubo(rng, n, integer=trial == 2)
    X = all_assignments(n)
    E = qubo_energies(Q, X)
    sampler = sampler_class()
    ss = sampler.sample_qubo(Q, seed=trial, **WORK[sampler._solver])
    assert ss.variables == list(range(n))
    # Every energy the sampler reports is x^T Q x of its sample.
    np.testing.assert_allclose(ss.record.energy, qubo_energies(Q, ss.record.sample), atol=1e-9)
    assert ss.first.energy == pytest.approx(E.min(), abs=1e-9)
    assert ss.record.feasible.all()
    assert ss.info["status"] in ("optimal", "completed")
    if sampler_class is qprune.ExactSolver:
        assert ss.info["status"] == "optimal"


@pytest.mark.parametrize("sampler_class", SAMPLERS)
def test_constraint_groups_match_brute_force_over_feasible_points(sampler_class):
    rng = np.random.default_rng(7)
    n = 9
    Q = random_qubo(rng, n)
    X = all_assignments(n)
    group_a, group_b = [0, 2, 4, 6, 8], [1, 3, 5]
    feasible = (X[:, group_a].sum(1) == 2) & (X[:, group_b].sum(1) == 1)
    best = qubo_energies(Q, X[feasible]).min()
    ss = sampler_class().sample_qubo(Q, constraints=[(group_a, 2), (group_b, 1)], seed=3,
                                     **WORK[sampler_class._solver])
    s = ss.record.sample[0]
    assert s[group_a].sum() == 2 and s[group_b].sum() == 1 and ss.first.feasible
    assert ss.first.energy == pytest.approx(best, abs=1e-9)


def test_dict_and_coo_inputs_equal_the_dense_form():
    rng = np.random.default_rng(1)
    n = 7
    Q = random_qubo(rng, n)
    as_dict = {(i, j): Q[i, j] for i in range(n) for j in range(n)}
    r, c = np.nonzero(np.ones((n, n)))
    as_coo = (r, c, Q[r, c])
    X = all_assignments(n)
    best = qubo_energies(Q, X).min()
    for form in (Q, as_dict, as_coo):
        ss = qprune.ExactSolver().sample_qubo(form)
        assert ss.first.energy == pytest.approx(best, abs=1e-9)


def test_labels_of_any_hashable_type_map_back():
    Q = {("a", "b"): 2.0, ("a", "a"): -1.0, ("b", "b"): -1.5, ("c", "b"): -0.5}
    ss = qprune.ExactSolver().sample_qubo(Q)
    assert ss.variables == ["a", "b", "c"]
    # Brute force in Python over the dict itself.
    points = [dict(zip("abc", bits)) for bits in itertools.product((0, 1), repeat=3)]
    energies = [sum(w * x[u] * x[v] for (u, v), w in Q.items()) for x in points]
    assert ss.first.energy == pytest.approx(min(energies))
    assert ss.first.sample == points[int(np.argmin(energies))]
    tuples = {((0, 1), (2, 3)): -1.0, ((0, 1), (0, 1)): 0.5}
    ss = qprune.ExactSolver().sample_qubo(tuples)
    assert set(ss.first.sample) == {(0, 1), (2, 3)}


def test_sample_ising_equals_the_qubo_form():
    rng = np.random.default_rng(5)
    n = 8
    h = rng.normal(size=n)
    J = np.triu(rng.normal(size=(n, n)), 1)
    S = 2 * all_assignments(n).astype(np.float64) - 1
    E_ising = S @ h + np.einsum("ki,ij,kj->k", S, J, S) + 0.25
    ss = qprune.ExactSolver().sample_ising(h, J, offset=0.25)
    assert ss.vartype == qprune.SPIN
    assert set(np.unique(ss.record.sample)) <= {-1, 1}
    assert ss.first.energy == pytest.approx(E_ising.min(), abs=1e-9)
    # Energies of the returned spins, recomputed in numpy.
    s = ss.record.sample.astype(np.float64)
    np.testing.assert_allclose(ss.record.energy,
                               s @ h + np.einsum("ki,ij,kj->k", s, J, s) + 0.25, atol=1e-9)
    # The same model written as a QUBO (x = (1 + s) / 2): same optimum.
    Q = 4 * J + np.diag(2 * h - 2 * (J.sum(0) + J.sum(1)))
    offset = 0.25 - h.sum() + J.sum()
    qss = qprune.ExactSolver().sample_qubo(Q, offset=offset)
    assert qss.first.energy == pytest.approx(ss.first.energy, abs=1e-9)
    np.testing.assert_array_equal(2 * qss.record.sample[0] - 1, ss.record.sample[0])
    # Dict form, as dimod takes it.
    hd = {i: h[i] for i in range(n)}
    Jd = {(i, j): J[i, j] for i in range(n) for j in range(i + 1, n)}
    dss = qprune.SimulatedAnnealingSampler().sample_ising(hd, Jd, num_reads=20, seed=2)
    assert dss.first.energy == pytest.approx(E_ising.min() - 0.25, abs=1e-9)


class DuckBQM:
    """Any object with .linear, .quadratic, .offset and .vartype (dimod's BQM interface)."""

    def __init__(self, linear, quadratic, offset, vartype):
        self.linear, self.quadratic, self.offset, self.vartype = linear, quadratic, offset, vartype


def test_sample_takes_a_bqm_like_object():
    linear = {"x": -1.0, "y": 0.5, "z": -0.25}
    quadratic = {("x", "y"): 1.5, ("y", "z"): -2.0}
    bqm = DuckBQM(linear, quadratic, 0.75, "BINARY")
    ss = qprune.ExactSolver().sample(bqm)
    best = min(0.75 + sum(w * x[v] for v, w in linear.items()) +
               sum(w * x[u] * x[v] for (u, v), w in quadratic.items())
               for x in (dict(zip("xyz", b)) for b in itertools.product((0, 1), repeat=3)))
    assert ss.first.energy == pytest.approx(best)
    spin = qprune.ExactSolver().sample(DuckBQM(linear, quadratic, 0.75, "SPIN"))
    best_spin = min(0.75 + sum(w * s[v] for v, w in linear.items()) +
                    sum(w * s[u] * s[v] for (u, v), w in quadratic.items())
                    for s in (dict(zip("xyz", b)) for b in itertools.product((-1, 1), repeat=3)))
    assert spin.first.energy == pytest.approx(best_spin)


def test_dimod_bqm_gives_a_dimod_sampleset():
    dimod = pytest.importorskip("dimod", reason="dimod is not installed (not packaged for Debian)")
    bqm = dimod.BinaryQuadraticModel({"a": -1, "b": -1}, {("a", "b"): 2}, 0.0, dimod.BINARY)
    ss = qprune.ExactSolver().sample(bqm)
    assert isinstance(ss, dimod.SampleSet)
    assert ss.first.energy == pytest.approx(-1.0)


def test_sampleset_interface():
    Q = np.array([[-1.0, 2.0], [0.0, -1.0]])
    ss = qprune.SimulatedAnnealingSampler().sample_qubo(Q, num_reads=10, seed=1)
    assert ss.record.dtype.names == ("sample", "energy", "num_occurrences", "feasible")
    assert ss.record.sample.dtype == np.int8
    assert ss.record.num_occurrences.sum() == 10
    assert len(ss) == len(ss.samples()) == len(list(ss.data()))
    assert ss.first.energy == -1.0
    rows = list(ss.data(fields=["energy", "num_occurrences"]))
    assert [r.energy for r in rows] == sorted(r.energy for r in rows)
    assert ss.info["timing"]["solve_s"] > 0 and "counters" in ss.info
    assert all(isinstance(s, dict) for s in ss)
    assert ss.change_vartype(qprune.SPIN).record.sample.min() == -1


def test_to_pandas_dataframe():
    pytest.importorskip("pandas", reason="pandas is not installed (apt-get install python3-pandas)")
    ss = qprune.ExactSolver().sample_qubo({("a", "b"): 1.0})
    df = ss.to_pandas_dataframe()
    assert list(df.columns) == ["a", "b", "energy", "num_occurrences", "feasible"]


def test_keyword_parameters():
    Q = np.eye(3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'sweeps'.*sa solver"):
        qprune.TabuSampler().sample_qubo(Q, sweeps=10)
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        qprune.SimulatedAnnealingSampler().sample_qubo(Q, bogus=1)
    with pytest.raises(ValueError, match="schedule"):
        qprune.SimulatedAnnealingSampler().sample_qubo(Q, schedule="cubic")
    with pytest.raises(ValueError, match="num_reads"):
        qprune.SimulatedAnnealingSampler().sample_qubo(Q, num_reads=0)
    with pytest.raises(TypeError, match="num_reads"):
        qprune.SimulatedAnnealingSampler().sample_qubo(Q, num_reads="many")
    ss = qprune.SimulatedAnnealingSampler().sample_qubo(Q, sweeps=5, beta_range=(0.1, 2.0),
                                                        seed=3)
    assert ss.info["solver_info"]["sweeps"] == "5"
    assert "num_reads" in qprune.SimulatedAnnealingSampler().parameters
    # Same seed, same samples; a time limit without num_reads uses the budget (as the CLI).
    a = qprune.SimulatedAnnealingSampler().sample_qubo(-Q, num_reads=4, seed=9)
    b = qprune.SimulatedAnnealingSampler().sample_qubo(-Q, num_reads=4, seed=9)
    np.testing.assert_array_equal(a.record.sample, b.record.sample)
    t = qprune.SimulatedAnnealingSampler().sample_qubo(-Q, time_limit=0.2, seed=1)
    assert t.info["status"] == "time_limit"


@pytest.mark.parametrize("bad, error, message", [
    (np.ones((2, 3)), ValueError, "not square"),
    (np.ones(3), ValueError, "square 2-d array"),
    (np.ones((2, 2, 2)), ValueError, "square 2-d array"),
    (np.array([[0.0, np.nan], [0.0, 0.0]]), ValueError, "not finite"),
    (np.array([[np.inf, 0.0], [0.0, 0.0]]), ValueError, "not finite"),
    ({(0, 1): float("nan")}, ValueError, "finite"),
    ({(1, "a"): 1.0}, TypeError, "mixed types"),
    ({(1, 2, 3): 1.0}, TypeError, "pair"),
    ({(1, 2): "heavy"}, TypeError, "not a number"),
    (np.array([["a", "b"], ["c", "d"]]), TypeError, "numeric"),
    ((np.array([0, 1]), np.array([1]), np.array([1.0, 2.0])), ValueError, "one length"),
    ((np.array([0, -1]), np.array([1, 0]), np.array([1.0, 2.0])), ValueError, "negative"),
    ((np.array([0.5]), np.array([1]), np.array([1.0])), TypeError, "integers"),
])
def test_bad_input_is_a_python_exception(bad, error, message):
    for sampler in (qprune.SimulatedAnnealingSampler(), qprune.ExactSolver()):
        with pytest.raises(error, match=message):
            sampler.sample_qubo(bad)


def test_bad_constraints_and_ising():
    Q = np.zeros((3, 3))
    with pytest.raises(ValueError, match="unknown variable 7"):
        qprune.ExactSolver().sample_qubo(Q, constraints=[([0, 7], 1)])
    with pytest.raises(ValueError, match="k"):
        qprune.ExactSolver().sample_qubo(Q, constraints=[([0, 1], 3)])
    with pytest.raises(ValueError, match="overlap|group"):
        qprune.ExactSolver().sample_qubo(Q, constraints=[([0, 1], 1), ([1, 2], 1)])
    with pytest.raises(ValueError, match="square"):
        qprune.ExactSolver().sample_ising(np.zeros(3), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="finite"):
        qprune.ExactSolver().sample_ising([np.nan, 0.0], {(0, 1): 1.0})
    with pytest.raises(MemoryError):
        qprune.ExactSolver().sample_qubo(np.ones((60, 60)))  # 2^60 states


def test_numpy_input_layouts_are_equal():
    rng = np.random.default_rng(11)
    Q = rng.normal(size=(6, 6))
    expected = qprune.ExactSolver().sample_qubo(Q).first.energy
    for form in (np.asfortranarray(Q), Q.astype(np.float32).astype(np.float64), Q[:, ::1],
                 np.ascontiguousarray(Q.T).T, Q.tolist()):
        assert qprune.ExactSolver().sample_qubo(form).first.energy == pytest.approx(expected)
    big = np.zeros((12, 12))
    big[::2, ::2] = Q  # a strided view: copied, same answer
    assert qprune.ExactSolver().sample_qubo(big[::2, ::2]).first.energy == pytest.approx(expected)


def test_solve_releases_the_gil():
    rng = np.random.default_rng(0)
    Q = rng.normal(size=(300, 300))
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(1)
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    try:
        ss = qprune.SimulatedAnnealingSampler().sample_qubo(Q, num_reads=4, sweeps=2000, seed=1)
    finally:
        done.set()
        t.join()
    # The counting thread ran while the solve held no GIL.
    assert len(ticks) > 5, f"only {len(ticks)} ticks during a {ss.info['timing']['solve_s']} s solve"


def test_ctrl_c_raises_keyboard_interrupt_with_the_best_answer():
    rng = np.random.default_rng(0)
    Q = rng.normal(size=(400, 400))
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            qprune.TabuSampler().sample_qubo(Q, time_limit=60.0, seed=1)
    finally:
        timer.cancel()
    ss = info.value.sampleset
    assert info.value.args[1] is ss
    assert ss.info["status"] == "interrupted"
    assert len(ss) >= 1
    np.testing.assert_allclose(ss.record.energy, qubo_energies(Q, ss.record.sample), rtol=1e-9)


def test_progress_reports_reach_the_calling_thread_in_order():
    rng = np.random.default_rng(2)
    Q = rng.normal(size=(300, 300))
    reports = []

    def progress(p):
        reports.append((threading.get_ident(), dict(p)))

    ss = qprune.SimulatedAnnealingSampler().sample_qubo(Q, num_reads=8, sweeps=3000, seed=1,
                                                        progress=progress)
    assert reports, "no progress report"
    assert {t for t, _ in reports} == {threading.get_ident()}
    done = [p["done"] for _, p in reports]
    assert done == sorted(done)
    last = reports[-1][1]
    assert last["stage"] == "sa reads" and last["done"] == last["total"] == 8
    assert last["best_energy"] == pytest.approx(ss.first.energy)


def test_an_exception_in_progress_stops_the_solve_and_is_raised():
    rng = np.random.default_rng(3)
    Q = rng.normal(size=(300, 300))

    def progress(p):
        raise RuntimeError(f"stop at {p['done']}")

    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match="stop at"):
        qprune.TabuSampler().sample_qubo(Q, time_limit=30.0, seed=1, progress=progress)
    assert time.perf_counter() - t0 < 10.0
    with pytest.raises(TypeError, match="progress"):
        qprune.TabuSampler().sample_qubo(Q, progress=3)


def test_array_labels_are_the_row_indices():
    Q = np.diag([1.0, -1.0, -2.0, 1.0])
    ss = qprune.ExactSolver().sample_qubo(Q, constraints=[([np.int64(1), 3], 1)])
    assert ss.variables == [0, 1, 2, 3]
    assert ss.first.sample == {0: 0, 1: 1, 2: 1, 3: 0}
    with pytest.raises(ValueError, match="unknown variable 4"):
        qprune.ExactSolver().sample_qubo(Q, constraints=[([4], 1)])
    with pytest.raises(ValueError, match="unknown variable 'a'"):
        qprune.ExactSolver().sample_qubo(Q, constraints=[(["a"], 1)])
