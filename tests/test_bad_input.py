"""No traceback for any input: one-line errors naming the value, exit status 2; bugs keep their traceback.

Also the Python API's argument checks (samplers, schedules), atomic writes that leave no temp
files, the bounded means generator and the memory budget measured on a real process.
"""

import json
import math
import os
import resource
import subprocess
import sys
import textwrap

import pytest
import torch

from cfglab._validate import CfglabInputError
from cfglab.cli import main
from cfglab.cli._common import write_json_atomic
from cfglab.guidance.schedules import parse_schedule
from cfglab.lab.ensembles import MEANS_BLOCK, infinite_class_mixture, random_means, random_mixture
from cfglab.lab.samplers import sample_ode, sample_sde, sigma_grid

pytestmark = pytest.mark.usefixtures("float64")  # written for float64 defaults


def run_cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, needle", [
    (["simulate", "--d", "10", "--alpha", "1000"], "K=e^1e+04 class means"),
    (["simulate", "--d", "5", "--K", "3", "--seed", "99999999999999999999999"], "99999999999999999999999"),
    (["simulate", "--d", "5", "--K", "3", "--device", "bogus"], "'bogus'"),
    (["simulate", "--d", "20000", "--K", "3", "--memory-gb", "0.001"], "needs 3.58 GiB, over the memory budget of 0.001 GiB"),
    (["simulate", "--d", "100000000", "--infinite"], "n_samples=2000 samples at d=100000000"),
    (["simulate", "--d", "5", "--K", "3", "--schedule", "constant:w=2,w=3"], "sets 'w' twice"),
    (["simulate", "--d", "5", "--K", "3", "--schedule", "-5"], "w must be >= -1"),
    (["theory", "gaussian", "--T", "400"], "must be <= 50"),
    (["theory", "transition", "--alpha", "1e-300"], "alpha=1e-300"),
    (["theory", "validate", "--seeds", "0"], "--seeds: must be >= 1, got 0"),
    (["schedules", "shrinkage", "--seed", "-1"], "--seed: must lie in [0, 2**63 - 1], got -1"),
    (["schedules", "shrinkage", "--n-simulate", "-1"], "--n-simulate: must be >= 0"),
    (["bench", "--device", "cuda"], "'cuda'"),
])
def test_issue_probes_exit_2_with_one_line(argv, needle, capsys):
    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_potential_refuses_a_folder_as_out(tmp_path, capsys):
    (tmp_path / "adir").mkdir()
    code, _, err = run_cli(["theory", "potential", "--alpha", "0.2", "--out", str(tmp_path / "adir")], capsys)
    assert code == 2 and "is a folder" in err and not (tmp_path / "adir.png").exists()


def test_an_internal_bug_keeps_its_traceback_and_asks_for_a_report(monkeypatch, capsys):
    lab = sys.modules["cfglab.lab.simulate"]  # the package re-exports a function of the same name

    def broken(cfg, **kw):
        raise ZeroDivisionError("planted")

    monkeypatch.setattr(lab, "simulate", broken)
    code, _, err = run_cli(["simulate", "--d", "2", "--K", "2", "--json"], capsys)
    assert code == 1 and "Traceback" in err and "ZeroDivisionError: planted" in err and "please report" in err


@pytest.mark.parametrize("obj, exc", [({"x": object()}, TypeError), ({"x": 1}, None)])
def test_atomic_json_write_leaves_no_temp_file(tmp_path, obj, exc):
    target = tmp_path / "out.json"
    if exc is None:
        write_json_atomic(target, obj)
        assert json.loads(target.read_text()) == obj
    else:
        with pytest.raises(exc):
            write_json_atomic(target, obj)
        assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out.json"] if exc is None else [])


def test_schedule_strings():
    with pytest.raises(CfglabInputError, match="sets 'w' twice"):
        parse_schedule("constant:w=2,w=3")
    with pytest.raises(CfglabInputError, match=r"w must be >= -1 .* got -5"):
        parse_schedule("-5")
    assert parse_schedule("-1").w == -1 and parse_schedule("2.5").w == 2.5


# --- Python API ---------------------------------------------------------------------------

@pytest.fixture
def model():
    return random_mixture(3, 4, 0.5, seed=0)


@pytest.mark.parametrize("sampler", [sample_sde, sample_ode])
@pytest.mark.parametrize("kwargs, match", [
    ({"x": torch.full((2, 4), math.nan)}, "x contains NaN or inf"),
    ({"x": torch.full((2, 4), math.inf)}, "x contains NaN or inf"),
    ({"sigmas": [2.0, math.nan, 0.0]}, "finite and >= 0, got nan"),
    ({"sigmas": [2.0, -1.0]}, "finite and >= 0, got -1.0"),
    ({"sigmas": [0.5, 1.0, 2.0]}, "decrease strictly"),
    ({"sigmas": []}, "at least 2 noise levels"),
    ({"generator": 42}, "generator must be a torch.Generator or None, got 42"),
    ({"schedule": lambda s: torch.zeros(7)}, r"returned shape \(7,\)"),
    ({"schedule": lambda s: None}, "returned None, expected a number"),
    ({"schedule": lambda s: "two"}, "returned 'two', expected a number"),
])
def test_samplers_name_bad_arguments(model, sampler, kwargs, match):
    args = {"x": torch.zeros(2, 4), "sigmas": sigma_grid(2.0, 4), "schedule": 1.0, **kwargs}
    x, sigmas = args.pop("x"), args.pop("sigmas")
    with pytest.raises(CfglabInputError, match=match):
        sampler(model, x, sigmas, **args)


def test_callable_schedules_that_return_numbers_or_matching_tensors_still_work(model):
    sigmas = sigma_grid(2.0, 4)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    ref = sample_sde(model, torch.zeros(3, 4), sigmas, schedule=1.5, generator=g())
    for fn in (lambda s: 1.5, lambda s: torch.full_like(s, 1.5), lambda s: torch.tensor(1.5)):
        assert torch.equal(sample_sde(model, torch.zeros(3, 4), sigmas, schedule=fn, generator=g()), ref)


# --- budgets ------------------------------------------------------------------------------

@pytest.mark.parametrize("K, d", [(1, 1), (3, 5), (3, 7), (MEANS_BLOCK + 5, 3)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_means_are_the_prefix_of_full_seeded_blocks(K, d, dtype):
    """The bounded generator draws only what K needs, bit-identical to full MEANS_BLOCK-row blocks."""
    from cfglab.lab.ensembles import _block_seed

    full = []
    for j in range(-(-K // MEANS_BLOCK)):
        g = torch.Generator().manual_seed(_block_seed(11, j))
        full.append(torch.randn(MEANS_BLOCK, d, generator=g, dtype=dtype))
    expect = math.sqrt(0.7) * torch.cat(full)[:K]
    assert torch.equal(random_means(K, d, 0.7, 11, dtype=dtype), expect)


def test_infinite_class_target_mean_is_one_row_of_the_seeded_block():
    assert torch.equal(infinite_class_mixture(6, 0.5, 1.0, seed=2).target_mean, random_means(1, 6, 1.0, 2)[0])


def _peak_rss_mib(code: str) -> float:
    """Peak resident memory (MiB) of a fresh interpreter running ``code`` (Linux: ru_maxrss in KiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # A fixed glibc mmap threshold (its default, 128 KiB) turns off the dynamic threshold, with
    # which freed multi-MiB arrays are kept in the heap or not depending on the run (measured:
    # peak 280 or 307 MiB for the same command); the budget bounds the arrays alive at once.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "131072"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert after >= before  # RUSAGE_CHILDREN keeps the largest child so far: run the larger one last
    return after / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss is in KiB on Linux")
def test_simulate_peak_memory_stays_within_the_budget():
    """``simulate --d 20000 --K 3 --memory-gb 0.05``: peak RSS − (interpreter + torch + cfglab) ≤ budget.

    The baseline is measured in the same test: the same command on a problem of a few bytes
    (d = 2, two samples, one step), so it imports and initialises everything the real run does
    (argument errors now answer before the heavy imports, so they make no baseline).  Default
    --n-samples (2000) does not fit 0.05 GiB and is refused up front.
    """
    budget_mib = 0.05 * 1024
    baseline = _peak_rss_mib("import cfglab.cli; "
                             "cfglab.cli.main(['simulate', '--d', '2', '--K', '3', '--n-samples', '2', '--steps', '1', '--json'])")
    peak = _peak_rss_mib(textwrap.dedent("""
        import sys, cfglab.cli
        code = cfglab.cli.main(['simulate', '--d', '20000', '--K', '3', '--memory-gb', '0.05',
                                '--n-samples', '20', '--steps', '5', '--json'])
        sys.exit(code)
    """))
    print(f"baseline {baseline:.1f} MiB, peak {peak:.1f} MiB, budget {budget_mib:.1f} MiB")
    assert peak - baseline <= budget_mib
    with pytest.raises(CfglabInputError, match="over the memory budget"):
        from cfglab.lab.simulate import SimulationConfig
        SimulationConfig(d=20000, K=3, memory_gb=0.05)
