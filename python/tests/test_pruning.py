"""Pruning from Python against the CLI on the example model: the same masks and energies for the
same seed (`qprune calibrate` + `qprune mask` vs qprune.compute_masks and vs a layer problem solved
by a sampler), the layer's arrays against the library's energy, and the pruned checkpoints
byte for byte (`qprune apply` vs qprune.apply_masks)."""

import filecmp
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

import qprune

CLI = os.environ.get("QPRUNE_CLI", "qprune")
SOURCE = pathlib.Path(os.environ.get("QPRUNE_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
MODEL = SOURCE / "examples" / "model"
CKPT = MODEL / "checkpoint"
SEED = 7
SPARSITY = 0.4


def run(*args):
    done = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, f"qprune {' '.join(map(str, args))}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("pruning")
    run("calibrate", CKPT, "--text", MODEL / "calibration.txt", "--tokens", 2048, "-o",
        d / "stats.safetensors")
    run("mask", CKPT, "--calib", d / "stats.safetensors", "--unit", "both", "--sparsity",
        SPARSITY, "--head-sparsity", 0.5, "--solver", "sa", "--seed", SEED,
        "-o", d / "cli_sa.json")
    run("mask", CKPT, "--calib", d / "stats.safetensors", "--unit", "mlp", "--sparsity", SPARSITY,
        "--solver", "tabu", "--seed", SEED, "--tabu-iterations", 3000, "--reads", 2,
        "-o", d / "cli_tabu.json")
    return d


@pytest.fixture(scope="module")
def ckpt():
    return qprune.open_checkpoint(CKPT)


@pytest.fixture(scope="module")
def stats(work):
    return qprune.read_calibration(work / "stats.safetensors")


def cli_entries(path):
    return {(e["layer"], e["unit"]): e for e in json.loads(path.read_text())["entries"]}


def test_compute_masks_equals_qprune_mask(work, ckpt, stats):
    cli = cli_entries(work / "cli_sa.json")
    masks = qprune.compute_masks(ckpt, stats, sparsity=SPARSITY, head_sparsity=0.5,
                                 unit="both", solver="sa", seed=SEED)
    assert len(masks.entries) == len(cli) == 8
    for e in masks.entries:
        c = cli[(e.layer, e.unit)]
        assert e.kept == c["kept"]
        assert e.objective == c["objective"]
        assert e.seed == c["seed"]


@pytest.mark.parametrize("sampler, cli_file, kwargs", [
    (qprune.SimulatedAnnealingSampler, "cli_sa.json", {}),
    (qprune.TabuSampler, "cli_tabu.json", {"tabu_iterations": 3000, "num_reads": 2}),
])
def test_a_layer_problem_solved_by_a_sampler_equals_qprune_mask(work, ckpt, stats, sampler,
                                                                 cli_file, kwargs):
    cli = cli_entries(work / cli_file)
    cfg = ckpt.config
    for layer in range(cfg["num_hidden_layers"]):
        p = qprune.layer_problem(ckpt, layer=layer, unit="mlp", calib=stats, sparsity=SPARSITY)
        assert p.num_units == cfg["intermediate_size"]
        assert p.keep == round((1 - SPARSITY) * p.num_units)
        seed = qprune.layer_seed(SEED, layer, "mlp")
        c = cli[(layer, "mlp")]
        assert seed == c["seed"]
        ss = sampler().sample(p, seed=seed, **kwargs)
        kept = np.flatnonzero(ss.record.sample[0]).tolist()
        assert kept == c["kept"]
        assert ss.first.energy == c["objective"]
        # The same problem through numpy arrays: the same answer at the same energy.
        arrays = sampler().sample_qubo(p.Q, offset=p.offset, constraints=p.constraints,
                                       seed=seed, **kwargs)
        assert np.flatnonzero(arrays.record.sample[0]).tolist() == c["kept"]
        assert arrays.first.energy == pytest.approx(c["objective"], rel=1e-12)


def test_layer_arrays_give_the_library_energy(ckpt, stats, work):
    cli = cli_entries(work / "cli_sa.json")
    p = qprune.layer_problem(ckpt, layer=1, unit="mlp", calib=stats, sparsity=SPARSITY)
    Q, C = p.Q, p.couplings
    assert Q.shape == C.shape == (p.num_units, p.num_units)
    assert np.allclose(np.tril(Q, -1), 0.0) and np.allclose(np.diag(C), 0.0)
    assert not C.flags.writeable  # a view of the library's matrix
    [(group, k)] = p.constraints
    assert sorted(group) == list(range(p.num_units)) and k == p.keep
    x = np.zeros(p.num_units)
    x[cli[(1, "mlp")]["kept"]] = 1
    for energy in (p.offset + x @ Q @ x, p.offset + p.linear @ x + x @ C @ x / 2):
        assert energy == pytest.approx(cli[(1, "mlp")]["objective"], rel=1e-10)
    rng = np.random.default_rng(0)
    for _ in range(3):
        y = (rng.random(p.num_units) < 0.5).astype(np.int8)
        assert p.offset + y @ Q @ y == pytest.approx(p.energy(y), rel=1e-10)
    assert p.metadata["source"] == "calibration" and p.metadata["layer"] == 1
    heads = qprune.layer_problem(ckpt, layer=0, unit="heads", calib=stats, sparsity=0.5)
    assert heads.unit == "heads_per_group" and len(heads.constraints) == ckpt.config[
        "num_key_value_heads"]


def test_masks_from_python_apply_like_the_cli(work, ckpt, stats):
    problems = [qprune.layer_problem(ckpt, layer=l, unit="mlp", calib=stats, sparsity=SPARSITY)
                for l in range(4)]
    solved = [(p, qprune.SimulatedAnnealingSampler().sample(
        p, seed=qprune.layer_seed(SEED, p.layer, "mlp"))) for p in problems]
    masks = qprune.masks_from_solutions(ckpt, solved, stats, sparsity=SPARSITY, solver="sa",
                                        seed=SEED)
    qprune.write_masks(masks, work / "py.json")
    py = cli_entries(work / "py.json")
    cli = cli_entries(work / "cli_sa.json")
    for key, e in py.items():
        assert e["kept"] == cli[key]["kept"] and e["objective"] == cli[key]["objective"]
        assert e["baseline_objective"] == cli[key]["baseline_objective"]
    # The CLI applies the Python masks; Python applies the CLI's (MLP entries only): same files.
    cli_mlp = qprune.compute_masks(ckpt, stats, sparsity=SPARSITY, unit="mlp", seed=SEED)
    qprune.write_masks(cli_mlp, work / "cli_mlp.json")
    run("apply", CKPT, "--masks", work / "py.json", "-o", work / "pruned_cli")
    stored, effective = qprune.apply_masks(ckpt, qprune.read_masks(work / "cli_mlp.json"),
                                           work / "pruned_py", stats)
    assert stored == effective > 0
    names = sorted(os.listdir(work / "pruned_cli"))
    assert names == sorted(os.listdir(work / "pruned_py"))
    match, mismatch, errors = filecmp.cmpfiles(work / "pruned_cli", work / "pruned_py", names,
                                               shallow=False)
    assert not mismatch and not errors, mismatch
    config = json.loads((work / "pruned_py" / "config.json").read_text())
    assert config["intermediate_size"] == round((1 - SPARSITY) * 512)


def test_pruning_errors_are_python_exceptions(ckpt, stats, tmp_path):
    with pytest.raises(ValueError, match="layer"):
        qprune.layer_problem(ckpt, layer=99, calib=stats, sparsity=0.4)
    with pytest.raises(ValueError, match="unit"):
        qprune.layer_problem(ckpt, layer=0, unit="neurons", sparsity=0.4)
    with pytest.raises(ValueError):
        qprune.layer_problem(ckpt, layer=0, sparsity=1.0)
    with pytest.raises(OSError):
        qprune.open_checkpoint(tmp_path / "missing")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises((ValueError, OSError)):
        qprune.read_calibration(garbage)
    with pytest.raises(ValueError, match="entries"):
        qprune.masks_from_solutions(ckpt, [(qprune.layer_problem(ckpt, 0, sparsity=0.4),
                                            np.zeros(3))], sparsity=0.4, solver="sa")


def test_calibrate_equals_qprune_calibrate_for_text_and_token_ids(ckpt, work, tmp_path):
    reports = []
    qprune.calibrate(ckpt, MODEL / "calibration.txt", tmp_path / "text.safetensors", tokens=2048,
                     progress=reports.append)
    assert filecmp.cmp(tmp_path / "text.safetensors", work / "stats.safetensors", shallow=False)
    assert reports and reports[-1]["done"] == reports[-1]["total"] == 2048
    # The byte-level model's tokens are the bytes: the same statistics from the ids.
    ids = np.frombuffer((MODEL / "calibration.txt").read_bytes(), dtype=np.uint8)
    qprune.calibrate(ckpt, None, tmp_path / "ids.safetensors", tokens=2048, token_ids=ids)
    assert filecmp.cmp(tmp_path / "ids.safetensors", work / "stats.safetensors", shallow=False)
    with pytest.raises(ValueError, match=r"token_ids\[1\] = 300 is outside"):
        qprune.calibrate(ckpt, None, tmp_path / "bad.safetensors", token_ids=[1, 300])
    with pytest.raises(TypeError, match="one of text"):
        qprune.calibrate(ckpt, MODEL / "calibration.txt", tmp_path / "x.safetensors",
                         token_ids=[1])
    assert not (tmp_path / "bad.safetensors").exists()


def test_calibrate_a_tokenizer_json_model_like_the_cli(tmp_path):
    """A checkpoint with a Hugging Face tokenizer.json: Python tokenises as the CLI does."""
    data = SOURCE / "tests" / "data"
    folder = tmp_path / "tok-ckpt"
    subprocess.run(["python3", data / "checkpoints" / "widen_vocab.py",
                    data / "checkpoints" / "tiny-llama-gqa", folder, "660"], check=True)
    (folder / "tokenizer.json").write_bytes(
        (data / "tokenizer" / "bytelevel_gpt2.json").read_bytes())
    text = data / "tokenizer" / "mixed.txt"
    run("calibrate", folder, "--text", text, "--context", 64, "-q", "-o", tmp_path / "cli.st")
    stats = qprune.calibrate(qprune.open_checkpoint(folder), text, tmp_path / "py.st",
                             context=64)
    assert filecmp.cmp(tmp_path / "cli.st", tmp_path / "py.st", shallow=False)
    assert stats.num_tokens > 1000


def test_expert_masks_from_python_equal_qprune_mask(tmp_path):
    """A MoE checkpoint: compute_masks(unit="experts") is `qprune mask --unit experts`."""
    moe = SOURCE / "examples" / "model_moe" / "checkpoint"
    run("calibrate", moe, "--text", MODEL / "calibration.txt", "--tokens", 4096, "--context", 128,
        "-q", "-o", tmp_path / "moe.stats")
    run("mask", moe, "--calib", tmp_path / "moe.stats", "--unit", "experts", "--sparsity", 0.5,
        "--solver", "sa", "--seed", SEED, "-o", tmp_path / "cli.json")
    ckpt = qprune.open_checkpoint(moe)
    stats = qprune.read_calibration(tmp_path / "moe.stats")
    masks = qprune.compute_masks(ckpt, stats, sparsity=0.5, unit="experts", solver="sa",
                                 seed=SEED)
    cli = cli_entries(tmp_path / "cli.json")
    assert len(masks.entries) == 4
    for e in masks.entries:
        assert e.unit == "experts" and len(e.kept) == 8
        assert e.kept == cli[(e.layer, "experts")]["kept"]
        assert e.rerouted_error == pytest.approx(cli[(e.layer, "experts")]["rerouted_error"])
        assert e.rerouted_error <= e.qubo_rerouted_error
