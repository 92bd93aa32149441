"""Effective potential of CFG along the target direction (docs/theory.md, arXiv 2602.00716 §3).

On the line ``x = m μ_c + x⊥`` (``|x⊥|²/d = v⊥``) the guided score is the gradient of

.. math:: U_w(m, t) = -\\tfrac1d\\big[(1 + w)\\log p_c(x) - w \\log p_u(x)\\big],
          \\qquad -\\partial_m U_w = s^2\\, (s_w\\cdot\\mu_c)/|\\mu_c|^2 ,

with, per dimension and up to constants,
``log p_c/d = −((m − e^{-t})² s² + v⊥)/(2Γ)`` and
``log p_u/d = −(m² s² + v⊥)/(2Γ) + max(e_c(m), f_REM(q(m)))`` in d → ∞
(``logaddexp`` of the two at finite d).  The kink of ``log p_u`` where the target's
log-weight overtakes the non-target free energy is the class-resolution transition: on the
target side of it the CFG term cancels and only the conditional well remains.
"""

from __future__ import annotations

import math

import numpy as np

from cfglab._io import save_figure_atomic
from cfglab._validate import positive
from cfglab.theory.rem import gamma, rem_free_energy

__all__ = ["effective_potential", "plot_potential"]


def effective_potential(m: np.ndarray, t: float, *, alpha: float, w: float, v_perp: float, sigma2: float = 0.5,
                        s2: float = 1.0, d: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(U_w(m, t), π_c(m, t))`` on a grid of overlaps ``m`` [n] at OU time t (per dimension)."""
    alpha, v_perp = positive("alpha", alpha), positive("v_perp", v_perp)
    m = np.asarray(m, dtype=float)  # [n]
    u = math.exp(-2 * t)
    G = gamma(sigma2, t)
    a, r = math.exp(-t) / G, u * s2 / G
    e_c = a * m * s2 - 0.5 * r  # [n]
    f = np.array([rem_free_energy(alpha, r, a * a * s2 * (mi * mi * s2 + v_perp)).free_energy for mi in m])
    if d is None:
        log_sum, pi = np.maximum(e_c, f), (e_c > f).astype(float)
    else:
        log_sum = np.logaddexp(d * e_c, d * f) / d
        pi = 0.5 * (1 + np.tanh(0.5 * d * (e_c - f)))
    log_pc = -((m - math.exp(-t)) ** 2 * s2 + v_perp) / (2 * G)
    log_pu = -(m * m * s2 + v_perp) / (2 * G) + log_sum - alpha
    return -((1 + w) * log_pc - w * log_pu), pi


def plot_potential(path: str, *, alpha: float = 0.2, w: float = 2.0, sigma2: float = 0.5, s2: float = 1.0,
                   sampler: str = "sde", T: float = 6.0, d: int | None = None, n_times: int = 6) -> dict:
    """Plot U_w(m, t) at ``n_times`` times across the switch of the guided DMFT trajectory (PNG).

    Returns the times, the DMFT overlap m(t) at each and the overlap m*(t) where the target
    takes over (None where it does not on the plotted range).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cfglab.theory.dmft import solve_dmft

    pred = solve_dmft(alpha, sigma2=sigma2, s2=s2, schedule=f"constant:w={w}", sampler=sampler, T=T)
    tr = pred.trajectory
    t_sw = pred.t_switch if pred.t_switch is not None else 0.5
    times = np.linspace(min(2.2 * t_sw, T), 0.25 * t_sw, n_times)
    grid = np.linspace(-0.5, 2.0, 501)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    info = {"t": [], "m_dmft": [], "m_star": []}
    for t in times:
        j = int(np.argmin(np.abs(tr["t"] - t)))
        U, pi = effective_potential(grid, t, alpha=alpha, w=w, v_perp=float(tr["v_perp"][j]), sigma2=sigma2,
                                    s2=s2, d=d)
        U = U - U.min()
        flips = np.nonzero(np.diff(pi > 0.5))[0]
        m_star = float(grid[flips[0] + 1]) if len(flips) else None
        line, = axes[0].plot(grid, U, label=f"t={t:.2f}")
        axes[0].plot([tr["m"][j]], [np.interp(tr["m"][j], grid, U)], "o", color=line.get_color())
        drift = -np.gradient(U, grid) / s2
        axes[1].plot(grid, drift, color=line.get_color(), label=f"t={t:.2f}")
        if m_star is not None:
            axes[0].axvline(m_star, color=line.get_color(), ls=":", lw=0.8)
        info["t"].append(float(t)), info["m_dmft"].append(float(tr["m"][j])), info["m_star"].append(m_star)
    axes[0].set(xlabel="overlap m", ylabel="U_w(m, t) − min", title=f"effective potential, α={alpha:g}, w={w:g}",
                ylim=(0, None))
    axes[1].set(xlabel="overlap m", ylabel="−∂U/∂m / s² = s_w·μ_c/|μ_c|²",
                title="guided score along μ_c (kink: class resolution)")
    axes[1].axhline(0, color="k", lw=0.6)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    save_figure_atomic(fig, path)
    return {"out": str(path), "t_switch": pred.t_switch, **info}
