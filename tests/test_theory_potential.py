"""Effective potential (docs/theory.md): its m-gradient is the guided score along μ_c, with a kink at the switch."""

import math

import numpy as np
import pytest

from cfglab.theory.potential import effective_potential
from cfglab.theory.rem import rem_free_energy


@pytest.mark.parametrize("t,w", [(1.0, 2.0), (0.4, 4.0), (2.0, 1.0)])
def test_gradient_is_the_guided_score_along_target(t, w):
    alpha, sigma2, s2, v = 0.2, 0.5, 1.0, 0.45
    m = np.linspace(-0.3, 1.8, 4001)
    U, pi = effective_potential(m, t, alpha=alpha, w=w, v_perp=v, sigma2=sigma2, s2=s2)
    drift = -np.gradient(U, m) / s2
    u = math.exp(-2 * t)
    G = sigma2 * u + 1 - u
    a, r = math.exp(-t) / G, u * s2 / G
    for j in range(50, len(m) - 50, 97):
        if abs(np.diff(pi)[max(j - 2, 0):j + 2]).sum() > 0:  # skip the kink itself
            continue
        rem = rem_free_energy(alpha, r, a * a * s2 * (m[j] ** 2 * s2 + v))
        M = rem.theta * a * s2 / (1 + rem.theta * r)
        rho = 1 - pi[j]
        # s_w·μ_c/|μ_c|² = −λ m + c  (docs/theory.md §3)
        expected = -(1 / G + w * rho * math.exp(-t) * M / G) * m[j] + math.exp(-t) / G * (1 + w * rho)
        assert drift[j] == pytest.approx(expected, abs=2e-3)
    assert pi[0] == 0 and pi[-1] == 1  # both phases on the line: the transition is visible


def test_finite_d_smooths_the_kink():
    m = np.linspace(0, 2, 801)
    _, pi_inf = effective_potential(m, 1.0, alpha=0.2, w=2, v_perp=0.5)
    _, pi_50 = effective_potential(m, 1.0, alpha=0.2, w=2, v_perp=0.5, d=50)
    assert set(np.unique(pi_inf)) == {0.0, 1.0}
    assert ((pi_50 > 0.01) & (pi_50 < 0.99)).sum() > 5
    assert np.argmax(pi_inf > 0.5) == pytest.approx(np.argmax(pi_50 > 0.5), abs=3)
