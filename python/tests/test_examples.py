"""The scripts of examples/python run as a user runs them, and say what they should."""

import os
import pathlib
import subprocess
import sys

import qprune

SOURCE = pathlib.Path(os.environ.get("QPRUNE_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
EXAMPLES = SOURCE / "examples" / "python"


def run(script, *args):
    # The scripts import the same qprune as this test.
    package_dir = str(pathlib.Path(qprune.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [package_dir] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == [
        "compare_samplers.py", "prune_model.py", "qubo_in_five_lines.py"]


def test_qubo_in_five_lines():
    # E(x) = x^T Q x: the optimum keeps x0 and x2 (energy -2), found by brute force here.
    out = run("qubo_in_five_lines.py")
    assert "sample={0: 1, 1: 0, 2: 1}, energy=-2.0" in out


def test_compare_samplers():
    out = run("compare_samplers.py")
    assert "diagonal baseline" in out
    assert "SimulatedAnnealingSampler" in out and "TabuSampler" in out


def test_prune_model(tmp_path):
    out = run("prune_model.py", tmp_path, "--sparsity", 0.5, "--seed", 3)
    assert out.count("layer ") == 4
    assert "intermediate_size 256" in out
    assert (tmp_path / "masks.json").is_file()
    assert (tmp_path / "pruned" / "config.json").is_file()
