"""Start-up stays light: the command line answers --help, closed forms and bad arguments without torch.

Each case runs the real ``cfglab`` entry point in a fresh interpreter (so other tests' imports
cannot hide a regression) and lists which heavy modules ended up in ``sys.modules``
(docs/performance.md, start-up).  This is the test that keeps start-up fast as branches merge.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cfglab

HEAVY = ("torch", "scipy.optimize", "pandas", "matplotlib", "diffusers", "dask")
PROBE = (
    "import json, sys\n"
    "from cfglab.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    f"print(json.dumps({{'rc': rc, 'loaded': [m for m in {HEAVY!r} if m in sys.modules]}}), file=sys.stderr)\n"
)


def _loaded(*argv: str) -> tuple[int, list[str], str]:
    src = str(Path(cfglab.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", PROBE, *argv], env=env, capture_output=True, text=True, timeout=120)
    report = json.loads(run.stderr.strip().splitlines()[-1])
    return report["rc"], report["loaded"], run.stdout


@pytest.mark.parametrize("argv, rc", [
    (["--help"], 0),
    (["theory", "--help"], 0),
    (["simulate", "--d", "0"], 2),               # argument error (no class count given)
    (["simulate", "--d", "x", "--alpha", "0.2"], 2),
    (["theory", "transition", "--alpha", "nan"], 2),
    (["bench", "--budget-mb", "-1"], 2),         # value checked before the benchmark loads torch
    # bad values: checked by argparse types or by torch-free validators the library also runs
    (["simulate", "--d", "0", "--alpha", "0.2"], 2),
    (["simulate", "--d", "10", "--alpha", "-1"], 2),
    (["simulate", "--d", "10", "--alpha", "0.2", "--steps", "0"], 2),
    (["simulate", "--d", "20000", "--K", "3", "--memory-gb", "0.05"], 2),  # over the memory budget
    (["theory", "dmft", "--alpha", "-1"], 2),
    (["theory", "dmft", "--alpha", "0.2", "--d", "0"], 2),
    (["theory", "validate", "--alphas", "-1"], 2),
    (["schedules", "shrinkage", "--n", "0"], 2),
    (["schedules", "calibrate", "--base", "constant:w=2", "--w-neg", "-3"], 2),
    (["schedules", "compare", "--d", "0"], 2),
    (["latent", "evaluate", "--schedule", "constant:w=1", "--n-per-class", "0"], 2),
    (["latent", "study", "--seeds", "0"], 2),
    (["reproduce", "--profile", "bogus"], 2),
    (["reproduce", "--workers", "-1"], 2),
    (["bench", "--K", "0"], 2),
    (["bench", "--sampler", "--alpha", "-1"], 2),
    # schedule strings: parsed and checked by an argparse type; the schedule module loads torch lazily
    (["simulate", "--d", "10", "--alpha", "0.2", "--schedule", "bogus"], 2),
    (["simulate", "--d", "10", "--alpha", "0.2", "--schedule", "constant:w=-3"], 2),
    (["theory", "dmft", "--alpha", "0.2", "--schedule", "interval:w=2,lo=3,hi=1"], 2),
    (["schedules", "calibrate", "--base", "bogus:w=2"], 2),
    (["schedules", "compare", "--base", "constant:q=1"], 2),
    (["latent", "evaluate", "--schedule", "negative_window:w_pos=2"], 2),
    (["simulate", "--d", "10", "--alpha", "0.2", "--device", "gpu"], 2),  # the device string's syntax
    (["bench", "--device", "cuda:x"], 2),
    (["latent", "train", "--profile", "bogus"], 2),  # profiles live in the torch-free cfglab.latent.config
    (["latent", "regimes", "--profile", "nope"], 2),
])
def test_help_and_argument_errors_import_nothing_heavy(argv, rc):
    code, loaded, _ = _loaded(*argv)
    assert code == rc
    assert loaded == [], f"cfglab {' '.join(argv)} imported {loaded}"


def test_closed_form_transition_needs_no_torch():
    code, loaded, out = _loaded("theory", "transition", "--alpha", "0.2", "--json")
    assert code == 0 and json.loads(out)["t_c"] > 0
    assert loaded == [], loaded  # the REM crossing is a pure-Python bisection (no scipy.optimize)


def test_lazy_package_attributes_keep_the_public_api():
    """Every name in ``__all__`` resolves, to the object its defining module holds."""
    import cfglab.lab
    import cfglab.lab.simulate  # binds the submodule on its package: the function must stay exported

    for package in (cfglab, cfglab.lab):
        for name in package.__all__:
            assert getattr(package, name) is not None, name
    assert cfglab.lab.simulate is cfglab.simulate and callable(cfglab.simulate)
    assert set(cfglab.__all__) <= set(dir(cfglab))
    with pytest.raises(AttributeError):
        cfglab.no_such_name
