"""Every registered sweep task kind runs on a tiny input and returns a flat row of numbers."""

import math

import pytest

from cfglab.sweep.tasks import TASKS, resolve_params, run_task

TINY = {
    "simulate": {"d": 3, "K": 3, "steps": 5, "n_samples": 20},
    "theory.gaussian": {"schedule": "constant:w=1"},
    "theory.transition": {"alpha": 0.2},
    "theory.dmft": {"alpha": 0.2, "schedule": "constant:w=1", "steps": 20},
    "theory.validate": {"d": 4, "n_samples": 20, "steps": 10},
    "theory.crossing": {"d": 4, "n_samples": 20, "steps": 10},
    "schedules.compare": {"d": 3, "alpha": 0.3, "n_samples": 20, "steps": 6},
    "schedules.shrinkage": {"n": 2, "n_simulate": 0},
    "latent.evaluate": {"profile": "tiny", "schedule": "constant:w=1", "n_per_class": 7, "steps": 2},
    "latent.regime": {"conditioning": "digits", "data": "digits", "profile": "tiny", "train_seed": 0,
                      "schedule": "negative_window:w_pos=1,w_neg=-1,sigma_switch=1", "sampler": "heun",
                      "steps": 3, "n_per_class": 7, "nearest_k": 3, "seed": 0},
    "latent.study": {"profile": "tiny", "schedule": "constant:w=1", "seed": 0, "n_per_class": 7, "steps": 2,
                     "images": True},
}


def test_every_registered_kind_has_a_tiny_input():
    assert set(TINY) == set(TASKS)


@pytest.mark.parametrize("kind", sorted(TASKS))
def test_kind_runs_and_returns_a_flat_row(kind, request):
    if kind.startswith("latent."):
        request.getfixturevalue("tiny_latent_cache")  # the shared tiny model, trained once
    row = run_task(kind, resolve_params(kind, TINY[kind]))
    assert row and all(isinstance(k, str) for k in row)
    assert all(v is None or isinstance(v, (bool, int, str)) or math.isfinite(v) for v in row.values())
    assert any(isinstance(v, float) for v in row.values()) or "rows" in row
