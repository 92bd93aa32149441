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
