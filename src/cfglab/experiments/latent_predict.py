"""The theory's forecast for a measured latent regime, written before any sample is drawn (issue 14).

Which theory (docs/latent.md "Regimes"):

* ``α/α_c < 1`` — few resolvable classes: the DMFT with the measured per-direction spectra
  (:func:`cfglab.theory.dmft_spectral.solve_dmft_spectral`, model ``"dmft-spectral"``):
  within-class σ_i² and between-class s_i² along the principal directions of the within-class
  covariance (the between-class covariance's off-diagonal part in that basis is dropped and
  the diagonal rescaled by :func:`between_scale`, so the model resolves the class at the
  σ the full covariances predict), K = K′ classes in d = the latent dimension (non-target rate ``ln(K′ − 1)/d``, finite-d
  smooth switch);
* ``α/α_c ≥ 1`` — classes never resolved: the infinite-class Gaussian theory per principal
  direction (:func:`cfglab.theory.gaussian.solve_gaussian` with ``cond_var`` = within-class and
  ``uncond_var`` = within + between variances).

Per schedule: the predicted mean overlap and variance ratio (mean over directions); for a
negative window, the same for its positive base (``w_neg`` replaced by ``w_pos``, i.e.
constant CFG at ``w_pos`` below ``sigma_hi``) and the verdict of :data:`HELPS_RULE`.
"""

from __future__ import annotations

import dataclasses
import math

from cfglab._validate import CfglabInputError
from cfglab.guidance.schedules import Constant, NegativeWindow, as_schedule
from cfglab.noise import t_from_sigma

__all__ = ["HELPS_RULE", "INERT_TOL", "between_scale", "forecast", "theory_for"]

INERT_TOL = 0.01  # |Δ var_ratio| below the DMFT grid's staircase (calibrate.VAR_TOL): "inert"
HELPS_RULE = (
    f"window_helps = True iff |var_ratio(window) - var_ratio(base)| >= {INERT_TOL} and "
    "|log var_ratio(window)| < |log var_ratio(base)| and mean_overlap(window) >= 1; "
    "False otherwise (effect: inert / worsens / overshoots / loses-class); None: not a window"
)
_REQUIRED = ("K", "d", "alpha", "alpha_c", "alpha_ratio", "within_var", "between_var")


def theory_for(regime: dict, *, sampler: str = "ode", sigma_max: float = 80.0) -> tuple[str, dict]:
    """``(model, kwargs)`` of :func:`cfglab.experiments.calibrate.predict` / ``calibrate`` for ``regime``."""
    missing = [k for k in _REQUIRED if k not in regime]
    if missing:
        raise CfglabInputError(f"regime dict lacks {', '.join(missing)} (use measure_regime)")
    T = t_from_sigma(float(sigma_max))
    within = [float(v) for v in regime["within_var"]]
    between = [max(float(v), 0.0) for v in regime["between_var"]]
    sigma2 = sum(within) / len(within)
    import numpy as np

    if regime["alpha_ratio"] < 1:  # predict checks that the spectra have d directions
        between = np.asarray(between) * between_scale(regime)
        spectra = dict(cond_var=np.asarray(within), uncond_var=np.asarray(within) + between)  # [d] each
        kw = dict(regime="dmft-spectral", alpha=regime["alpha"], d=int(regime["d"]), **spectra)
        return "dmft-spectral", dict(kw, sampler=sampler, T=T)
    spectra = dict(cond_var=np.asarray(within), uncond_var=np.asarray(within) + np.asarray(between))  # [d] each
    kw = dict(regime="infinite", sigma2=sigma2, s2=sum(between) / len(between), **spectra)
    return "infinite-class", dict(kw, sampler=sampler, T=T)


def between_scale(regime: dict) -> float:
    """Factor on the diagonal between-class spectrum so the spectral model resolves at the measured-statistics σ.

    The spectra are read in Σ_w's eigenbasis, where Σ_b is not diagonal, so their capacity
    exceeds α_c (digits: 0.260 vs 0.163).  The factor makes the diagonal model's capacity at
    the predicted resolution σ (full covariances, finite-d rate ln(K − 1)/d) equal that rate,
    so the spectral DMFT switches where the full covariances do; at σ = 0 (α_c) when no
    resolution σ is given.
    """
    from cfglab.theory.anisotropic import scale_to_capacity

    within, between = regime["within_var"], [max(float(v), 0.0) for v in regime["between_var"]]
    sigma = regime.get("sigma_res_predicted")
    if sigma is not None and math.isfinite(sigma) and sigma > 0:
        return scale_to_capacity(within, between, regime.get("alpha_finite_d", regime["alpha"]), sigma)
    return scale_to_capacity(within, between, regime["alpha_c"], 0.0)


def _verdict(window: tuple[float, float], base: tuple[float, float]) -> tuple[bool, str]:
    (m, v), (_, vb) = window, base
    if m < 1:
        return False, "loses-class"
    if abs(v - vb) < INERT_TOL:
        return False, "inert"
    if abs(math.log(v)) < abs(math.log(vb)):
        return True, "restores-diversity"
    return False, "overshoots" if (v - 1) * (vb - 1) < 0 else "worsens"


def forecast(regime: dict, schedules, *, sampler: str = "ode", sigma_max: float = 80.0,
             calibrate_w: float | None = 2.0, w_neg: float | None = None) -> dict:
    """Predictions for ``schedules`` (strings or objects) in the measured ``regime`` (JSON-ready).

    ``schedules`` keys the result by ``str(s)`` of each given schedule.
    ``calibrate_w``: base weight of the calibrated window (``constant:w=calibrate_w``; None: skip);
    ``w_neg``: its window strength (None: the calibrator's "auto").
    """
    from cfglab.experiments.calibrate import calibrate, predict

    model, kw = theory_for(regime, sampler=sampler, sigma_max=sigma_max)
    theory = lambda s: predict(s, **kw)  # noqa: E731
    out = {"regime": _summary(regime), "model": model, "sampler": sampler, "T": kw["T"],
           "theory_inputs": {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in kw.items()},
           "rule": HELPS_RULE, "schedules": {}}  # fmt: skip
    if model == "dmft-spectral":
        out["between_scale"] = between_scale(regime)
    for s in schedules:
        sched = as_schedule(s)
        m, v = theory(sched)
        row = {"schedule": str(sched), "mean_overlap": m, "var_ratio": v, "window_helps": None}
        if isinstance(sched, NegativeWindow):
            base = dataclasses.replace(sched, w_neg=sched.w_pos)
            mb, vb = theory(base)
            helps, effect = _verdict((m, v), (mb, vb))
            row.update(base=str(base), base_mean_overlap=mb, base_var_ratio=vb, window_helps=helps,
                       effect=effect, var_ratio_gain=v - vb)  # fmt: skip
        out["schedules"][str(s)] = row
    if calibrate_w is None:
        out["calibrated_schedule"], out["calibration"] = None, {"reason": "not requested"}
        return out
    try:
        cal = calibrate(Constant(calibrate_w), w_neg=w_neg, **kw)
        out["calibrated_schedule"] = str(cal.schedule)
        out["calibration"] = cal.to_dict()
    except CfglabInputError as err:  # the theory finds no window here: say why
        out["calibrated_schedule"] = None
        out["calibration"] = {"reason": str(err)}
    return out


def _summary(regime: dict) -> dict:
    keys = ("name", "data", "K", "d", "alpha", "alpha_c", "alpha_ratio", "sigma_res_measured",
            "sigma_res_gmm", "sigma_res_predicted")  # fmt: skip
    return {k: regime[k] for k in keys if k in regime}
