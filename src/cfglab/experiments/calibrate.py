"""Theory-calibrated negative-guidance window (docs/schedules.md ``calibrated``; issue: schedules that keep diversity).

The paper's §4 schedule guides positively early (while classes separate) and negatively
late.  Here the window is solved from theory instead of hand-tuned: given a positive base
(``constant:w=W`` or ``interval:w=W,lo=..,hi=..``), find the switch σ (or, with the switch
fixed, the strength ``w_neg ≥ −1``) at which the predicted final variance ratio is 1:

* ``regime="infinite"``: the exact moment ODEs of :mod:`cfglab.theory.gaussian` (per
  eigendirection when ``cond_var`` / ``uncond_var`` are given; the target is then the mean
  of the per-direction variance ratios);
* ``regime="dmft"``: the mean-field theory of K = e^{αd} classes
  (:func:`cfglab.theory.dmft.solve_dmft`), target ``var_perp / σ² = 1``;
* ``regime="dmft-spectral"``: the same with per-direction spectra
  (:func:`cfglab.theory.dmft_spectral.solve_dmft_spectral`; ``cond_var`` = within-class σ_i²,
  ``uncond_var`` = within + between σ_i² + s_i², as for ``"infinite"``), target the mean over
  directions of ``v_i / σ_i²``.

The result is a :class:`~cfglab.guidance.schedules.NegativeWindow` whose ``sigma_hi`` is the
interval base's upper edge; ``str(schedule)`` is accepted by every ``--schedule``.

In the exponential regime the CFG force vanishes once the target class has taken over the
posterior (OU time ``t_switch`` of the DMFT): a window that switches below the base's guided
class-resolution level σ_res does nothing, so a solved switch lies above σ_res.  σ_res falls
with α (``cfglab theory windows``; docs/schedules.md): the same late window is inert at
α/α_c ≈ 0.36 and acts near and above α_c.  DMFT calibrations report ``frozen_before_switch``
when the prediction passes through the frozen phase, which the DMFT does not control.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.optimize import brentq

from cfglab._validate import CfglabInputError, guidance_weight, positive
from cfglab.guidance.schedules import Constant, Interval, NegativeWindow, Schedule, as_schedule
from cfglab.noise import sigma_from_t, t_from_sigma
from cfglab.theory.dmft import solve_dmft
from cfglab.theory.gaussian import solve_discrete, solve_gaussian

__all__ = ["Calibration", "base_parts", "calibrate", "predict"]

REGIMES = ("infinite", "dmft", "dmft-spectral")
XTOL = 1e-9  # in OU time (infinite regime); the DMFT's grid is coarser
XTOL_DMFT = 1e-6
VAR_TOL = 0.01  # the DMFT and the lab's samplers act on a step grid: the ratio is a staircase in σ_switch
# auto w_neg: infinite-class limit, strongest first (shortest window, most overlap kept);
# exponential regime, weakest first: at d = 40 strong pre-resolution windows (w_neg ≤ −0.35)
# left 3–60% of the samples unresolved in simulation, w_neg = −0.2 kept class accuracy ≥ 0.99
AUTO_W_NEG = {"infinite": (-1.0, -0.75, -0.5, -0.35, -0.2, -0.1), "dmft": (-0.1, -0.2, -0.35, -0.5, -0.75, -1.0)}
AUTO_W_NEG["dmft-spectral"] = AUTO_W_NEG["dmft"]


@dataclass(frozen=True)
class Calibration:
    """A solved negative window and the theory's prediction for it."""

    schedule: NegativeWindow
    sigma_switch: float
    mean_overlap: float
    var_ratio: float
    base_mean_overlap: float  # the positive base alone
    base_var_ratio: float
    regime: str = "infinite"
    frozen_before_switch: bool | None = None  # DMFT only: the result rests on the frozen-phase approximation

    def to_dict(self) -> dict:
        return {"schedule": str(self.schedule), "sigma_switch": self.sigma_switch, "w_neg": self.schedule.w_neg,
                "mean_overlap": self.mean_overlap, "var_ratio": self.var_ratio,
                "base_mean_overlap": self.base_mean_overlap, "base_var_ratio": self.base_var_ratio,
                "regime": self.regime, "frozen_before_switch": self.frozen_before_switch}


def predict(schedule, *, regime: str = "infinite", alpha: float | None = None, sigma2: float = 0.5,
            s2: float = 1.0, sampler: str = "sde", T: float = 6.0, cond_var=None, uncond_var=None,
            d: int | None = None, steps: int | None = None, target_s2: float | None = None) -> tuple[float, float]:
    """Theory's ``(mean_overlap, var_ratio)`` for ``schedule`` in ``regime`` (scalars).

    ``steps`` = None: the continuous-time dynamics; an int: the exact moments of the lab's
    discretised sampler on its ``steps``-step grid (Euler–Maruyama or Heun).
    ``regime="dmft-spectral"``: ``cond_var`` / ``uncond_var`` give the spectra; ``d`` (if given)
    must equal their length and selects the finite-d variant (smooth switch, K = ceil(e^{αd})).
    """
    if regime == "dmft-spectral":
        p = _solve_spectral(alpha, schedule, cond_var, uncond_var, sampler, T, d, steps)
        return float(p.mean_overlap), float(p.var_ratio)
    if regime == "infinite":
        kw = dict(sigma2=sigma2, s2=s2, sampler=sampler, T=T, cond_var=cond_var, uncond_var=uncond_var)
        p = solve_gaussian(schedule, n_points=2, **kw) if steps is None else solve_discrete(schedule, steps, **kw)
        return float(np.mean(p.mean_overlap)), float(np.mean(p.var_ratio))
    kw = {} if target_s2 is None else {"target_s2": target_s2}
    p = solve_dmft(alpha, sigma2=sigma2, s2=s2, schedule=schedule, sampler=sampler, T=T, d=d, steps=steps, **kw)
    return float(p.mean_overlap), float(p.var_perp) / sigma2


def _solve_spectral(alpha, schedule, cond_var, uncond_var, sampler, T, d, steps):
    """The spectral DMFT for ``cond_var`` = σ_i² and ``uncond_var`` = σ_i² + s_i² [d]."""
    from cfglab.theory.dmft_spectral import solve_dmft_spectral

    if cond_var is None or uncond_var is None:
        raise CfglabInputError("regime 'dmft-spectral' needs cond_var and uncond_var (per-direction spectra)")
    within = np.asarray(cond_var, dtype=np.float64)
    between = np.clip(np.asarray(uncond_var, dtype=np.float64) - within, 0.0, None)
    if d is not None and d != len(within):
        raise CfglabInputError(f"d={d} differs from the {len(within)} directions of cond_var")
    return solve_dmft_spectral(alpha, within, between, schedule=schedule, sampler=sampler, T=T, steps=steps,
                               finite_d=d is not None)


def base_parts(base: Schedule, T: float) -> tuple[float, float]:
    """(w_pos, sigma_hi) of a positive base schedule."""
    if isinstance(base, Constant):
        w, hi = base.w, math.inf
    elif isinstance(base, Interval):
        w, hi = base.w, base.hi
    else:
        raise CfglabInputError(f"calibrate needs a constant or interval base schedule, got {base}")
    if w <= 0:
        raise CfglabInputError(f"the base schedule's weight must be > 0 (positive guidance), got w={w}")
    return w, hi


def _check_regime(regime: str, alpha) -> float | None:
    if regime not in REGIMES:
        raise CfglabInputError(f"unknown regime {regime!r}; choose from {', '.join(REGIMES)}")
    if regime.startswith("dmft"):
        if alpha is None:
            raise CfglabInputError(f"regime {regime!r} needs alpha (K = e^{{alpha d}} classes)")
        return positive("alpha", alpha)
    return None


def calibrate(base, *, regime: str = "infinite", alpha: float | None = None, w_neg: float | None = -1.0,
              sigma_switch: float | None = None, sigma2: float = 0.5, s2: float = 1.0, sampler: str = "sde",
              T: float = 6.0, cond_var=None, uncond_var=None, d: int | None = None,
              steps: int | None = None, target_s2: float | None = None) -> Calibration:
    """Solve the negative window that restores the target variance (brentq on the theory).

    Parameters
    ----------
    base : positive base, ``constant:w=W`` or ``interval:w=W,lo=L,hi=H`` (object or string).
    regime : ``"infinite"`` (exact Gaussian limit), ``"dmft"`` (K = e^{αd}, needs ``alpha``) or
        ``"dmft-spectral"`` (also needs the spectra ``cond_var``, ``uncond_var``).
    w_neg : weight of the negative window (≥ −1).  None: "auto", the first of
        :data:`AUTO_W_NEG` (strongest first in the infinite-class limit, weakest first in the
        DMFT) that gives a clean root with mean overlap > 1 (in the exponential regime a strong
        window before resolution can stop the target from being resolved).
    sigma_switch : fix the switch σ and solve ``w_neg ∈ [−1, 0]`` instead.
    sigma2, s2, sampler, T, cond_var, uncond_var : as :func:`cfglab.theory.gaussian.solve_gaussian`.
    d : finite-d variant of the DMFT (None: d → ∞).
    target_s2 : DMFT only: ``|μ_c|²/d`` of the drawn target (conditions the prediction on it).
    steps : calibrate for the lab's discretised sampler with this many steps (None: continuous
        time).  Euler–Maruyama's variance is 1–5% high at 500 steps, so pass ``steps`` when the
        schedule is meant for a fixed-step sampler.

    Returns
    -------
    Calibration with ``schedule`` = ``NegativeWindow(w_pos, w_neg, sigma_switch, sigma_hi)``
    (positive on (σ_switch, σ_hi], ``w_neg`` below, 0 above σ_hi) and the predicted
    ``mean_overlap`` and ``var_ratio`` (= 1 up to the root tolerance).
    """
    alpha = _check_regime(regime, alpha)
    T = positive("T", T)
    base = as_schedule(base)
    w_pos, sigma_hi = base_parts(base, T)
    theory = lambda s: predict(s, regime=regime, alpha=alpha, sigma2=sigma2, s2=s2, sampler=sampler,  # noqa: E731
                               T=T, cond_var=cond_var, uncond_var=uncond_var, d=d, steps=steps,
                               target_s2=target_s2)
    base_m, base_v = theory(base)
    if base_v >= 1:
        raise CfglabInputError(f"the base {base} does not shrink the variance (ratio {base_v:.4g} >= 1); "
                               "nothing to calibrate")
    xtol = XTOL if regime == "infinite" else XTOL_DMFT
    tol = min(VAR_TOL, 0.1 * (1 - base_v))  # a root must repair at least 90% of the base's shrinkage
    if sigma_switch is not None:
        window = _solve_strength(theory, w_pos, positive("sigma_switch", sigma_switch), sigma_hi)
    elif w_neg is None:
        window = _solve_auto(theory, w_pos, sigma_hi, T, xtol, tol, AUTO_W_NEG[regime])
    else:
        window = _solve_switch(theory, w_pos, guidance_weight("w_neg", w_neg), sigma_hi, T, xtol, tol)
    m, v = theory(window)
    if abs(v - 1) > tol:
        why = ("the window stops the target class from being resolved" if regime != "infinite" else
               "one sampler step of the window moves it by more (use more steps)")
        raise CfglabInputError(
            f"no switch gives variance ratio 1 within {tol:.2g} with w_neg={window.w_neg:g}: the ratio jumps "
            f"across 1 (to {v:.4g} on the closer side) at sigma_switch={window.sigma_switch:.4g}, where {why}; "
            "use a weaker w_neg (e.g. -0.3), --w-neg auto, or fix --sigma-switch and solve the strength")
    if m <= 1:
        raise CfglabInputError(
            f"the calibrated window {window} restores the variance but its mean overlap {m:.4g} <= 1 loses the "
            f"separability gain of the base (overlap {base_m:.4g}); use a larger base weight or a weaker w_neg")
    return Calibration(window, window.sigma_switch, m, v, base_m, base_v, regime,
                       _frozen(regime, window, alpha, sigma2, s2, sampler, T, d, steps, target_s2,
                               cond_var, uncond_var))


def _frozen(regime, window, alpha, sigma2, s2, sampler, T, d, steps, target_s2, cond_var, uncond_var) -> bool | None:
    """DMFT regimes: whether the calibrated window's prediction passes through the frozen phase."""
    if regime == "infinite":
        return None
    if regime == "dmft-spectral":
        return _solve_spectral(alpha, window, cond_var, uncond_var, sampler, T, d, steps).frozen_before_switch

    kw = {} if target_s2 is None else {"target_s2": target_s2}
    return solve_dmft(alpha, sigma2=sigma2, s2=s2, schedule=window, sampler=sampler, T=T, d=d, steps=steps,
                      **kw).frozen_before_switch


def _solve_switch(theory: Callable, w_pos: float, w_neg: float, sigma_hi: float, T: float,
                  xtol: float = XTOL, tol: float = VAR_TOL) -> NegativeWindow:
    """Root in OU time t_s ∈ (0, min(T, t(σ_hi))) of var_ratio(t_s) − 1."""
    if w_neg >= 0:
        raise CfglabInputError(f"w_neg={w_neg} is not negative: no non-negative schedule can undo the "
                               "shrinkage (docs/schedules.md); use w_neg < 0")
    t_top = min(T, t_from_sigma(sigma_hi)) if math.isfinite(sigma_hi) else T
    make = lambda ts: NegativeWindow(w_pos, w_neg, sigma_from_t(ts), sigma_hi)  # noqa: E731
    f = lambda ts: theory(make(ts))[1] - 1  # noqa: E731
    f_top = f(t_top * (1 - 1e-9))
    if f_top < 0:
        raise CfglabInputError(
            f"even a window of w_neg={w_neg} over the whole run below sigma_hi={sigma_hi:g} leaves the variance "
            f"ratio at {f_top + 1:.4g} < 1; use a stronger w_neg (down to -1), a smaller base weight or a larger "
            "interval upper edge")
    f_bottom = f(0.0)
    if f_bottom >= 0:  # the base itself only shrinks, so this needs a window that acts at σ → 0
        return make(0.0)
    ts = brentq(f, 0.0, t_top * (1 - 1e-9), xtol=xtol)
    sides = [min(max(ts + k * 10 * xtol, 0.0), t_top * (1 - 1e-9)) for k in (-1, 0, 1)]
    best = min(sides, key=lambda x: abs(f(x)))
    if abs(f(best)) <= tol:
        return make(best)
    # a step in the ratio (a sampler grid, or the window stopping class resolution): keep the switch
    # on the side that over-corrects and solve the strength there
    above = max(sides, key=f)
    g = lambda wn: theory(NegativeWindow(w_pos, wn, sigma_from_t(above), sigma_hi))[1] - 1  # noqa: E731
    if f(above) > 0 and g(0.0) < 0:
        return NegativeWindow(w_pos, brentq(g, w_neg, 0.0, xtol=1e-9), sigma_from_t(above), sigma_hi)
    return make(best)


def _solve_auto(theory: Callable, w_pos: float, sigma_hi: float, T: float, xtol: float,
                tol: float, candidates: tuple) -> NegativeWindow:
    """First ``w_neg`` of ``candidates`` whose switch root is clean and keeps mean overlap > 1."""
    reasons = []
    for w_neg in candidates:
        try:
            window = _solve_switch(theory, w_pos, w_neg, sigma_hi, T, xtol, tol)
        except CfglabInputError as err:
            reasons.append(f"w_neg={w_neg}: {err}")
            continue
        m, v = theory(window)
        if abs(v - 1) <= tol and m > 1:
            return window
        reasons.append(f"w_neg={w_neg}: ratio {v:.4g}, overlap {m:.4g}")
    raise CfglabInputError("no negative window restores the variance while keeping mean overlap > 1 (" +
                           "; ".join(reasons) + ")")


def _solve_strength(theory: Callable, w_pos: float, sigma_switch: float, sigma_hi: float) -> NegativeWindow:
    """Root in w_neg ∈ [−1, 0] of var_ratio(w_neg) − 1 at a fixed switch."""
    if sigma_switch >= sigma_hi:
        raise CfglabInputError(f"sigma_switch={sigma_switch} must lie below the base's upper edge {sigma_hi}")
    make = lambda wn: NegativeWindow(w_pos, wn, sigma_switch, sigma_hi)  # noqa: E731
    f = lambda wn: theory(make(wn))[1] - 1  # noqa: E731
    f_strong = f(-1.0)
    if f_strong < 0:
        raise CfglabInputError(
            f"even w_neg=-1 below sigma_switch={sigma_switch:g} leaves the variance ratio at {f_strong + 1:.4g} < 1; "
            "raise sigma_switch (in the exponential regime the window must act before the classes are resolved) "
            "or lower the base weight")
    f_none = f(0.0)
    if f_none >= 0:  # no shrinkage left to repair above the switch: no root in [−1, 0]
        raise CfglabInputError(
            f"at sigma_switch={sigma_switch:g} the base leaves the variance ratio at {f_none + 1:.4g} >= 1 "
            "even without a window; lower sigma_switch")
    return make(brentq(f, -1.0, 0.0, xtol=1e-9))
