"""Shared test settings.

Slow, large-d tests are marked ``@pytest.mark.slow``; ``CFGLAB_SLOW_SCALE=full`` runs them
at full size, anything else (CI sets ``ci``) at a reduced size.
"""

import os

import pytest
import torch

FULL = os.environ.get("CFGLAB_SLOW_SCALE") == "full"


@pytest.fixture(autouse=True)
def _float64_default():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


@pytest.fixture
def slow_scale():
    """``"full"`` or ``"ci"``: the size a slow test should run at."""
    return "full" if FULL else "ci"


@pytest.fixture(scope="session")
def tiny_latent_cache(tmp_path_factory):
    """A private ``CFGLAB_CACHE`` holding the tiny latent model, trained once per session."""
    pytest.importorskip("diffusers")
    from cfglab.latent.checkpoint import load_or_train
    from cfglab.latent.data import load_data
    from cfglab.latent.train import PROFILES, cpu_threads

    root = tmp_path_factory.mktemp("latent-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("CFGLAB_CACHE", str(root))
    with cpu_threads(1):
        load_or_train(PROFILES["tiny"], load_data())
    yield root
    mp.undo()
