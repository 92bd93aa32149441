"""Shared test settings and fixtures.

``float64`` makes float64 the default dtype for the tests that request it (no test changes
it globally); ``tiny_latent_cache`` trains the tiny latent model once per session.  Slow,
large-d tests are marked ``@pytest.mark.slow``; ``CFGLAB_SLOW_SCALE=full`` runs them at full
size, anything else (CI sets ``ci``) at a reduced size.
"""

import os

import pytest
import torch

FULL = os.environ.get("CFGLAB_SLOW_SCALE") == "full"


@pytest.fixture
def float64():
    """Tensors created without a dtype are float64 for this test (modules that need it say so:
    ``pytestmark = pytest.mark.usefixtures("float64")``); restores the previous default."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


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
