"""Distortion observables of guided samples against the true conditional (docs/design.md).

The target conditional is ``N(μ_c, σ² I_d)``.  Headline: ``kl_per_dim``, the KL divergence
of the Gaussian fitted to the samples from the true conditional, per dimension.  The mean
overlap ``m`` and the variances along / orthogonal to μ_c explain it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import digamma

__all__ = ["distortion", "gaussian_kl_per_dim", "kl_estimator_bias", "TrajectoryRecorder"]


def _split(x: torch.Tensor, mu: torch.Tensor):
    """Overlap ``x·μ/|μ|²`` [N] and the part of x orthogonal to μ [N, d]."""
    mu_sq = mu @ mu
    overlap = (x @ mu) / mu_sq
    return overlap, x - overlap.unsqueeze(1) * mu


def gaussian_kl_per_dim(x: torch.Tensor, mu: torch.Tensor, sigma2: float) -> float:
    """``KL(N(x̄, S) ‖ N(μ, σ² I)) / d`` with ``S`` the sample covariance of ``x`` [N, d].

    Full covariance when N > 2d; otherwise a Gaussian with covariance diagonal in the
    (μ, μ^⊥) split (one variance along μ, one shared orthogonal variance).  The plug-in
    estimate is biased upward by about ``(d + 1)/(4N)``.
    """
    n, d = x.shape
    mean = x.mean(0)
    shift = ((mean - mu) @ (mean - mu)) / sigma2
    if n > 2 * d:
        cov = torch.cov(x.T).reshape(d, d)
        logdet = torch.linalg.slogdet(cov).logabsdet
        trace = torch.trace(cov)
    else:
        overlap, perp = _split(x - mean, mu)
        v_par = overlap.var() * (mu @ mu)
        v_perp = (perp**2).sum(1).mean() * n / (n - 1) / max(d - 1, 1)
        logdet = torch.log(v_par) + (d - 1) * torch.log(v_perp)
        trace = v_par + (d - 1) * v_perp
    kl = 0.5 * (trace / sigma2 + shift - d + d * math.log(sigma2) - logdet)
    return float(kl) / d


def kl_estimator_bias(n, d):
    r"""Expected :func:`gaussian_kl_per_dim` of ``n`` exact draws from the target (its bias floor).

    Under the target, ``(n − 1) S/σ²`` is Wishart, so ``E log det`` is a sum of digammas; with
    ``E tr S/σ² = d`` and ``E |x̄ − μ|²/σ² = d/n`` the expected plug-in KL per dimension is

    .. math:: \frac{1}{2d}\Big[\frac{d}{n} - \sum_{i=1}^{d}\big(\psi(\tfrac{n-i}{2})
              + \log\tfrac{2}{n-1}\big)\Big]

    for the full fit (n > 2d), and the analogue with one variance along μ (n − 1 degrees of
    freedom) and one orthogonal variance ((n − 1)(d − 1) degrees of freedom) otherwise.
    Vectorised over ``n`` and ``d``; ≈ (d + 3)/(4n) for n ≫ d.
    """
    n, d = np.broadcast_arrays(np.asarray(n, dtype=float), np.asarray(d, dtype=float))
    out = np.empty(n.shape)
    for idx in np.ndindex(n.shape):
        ni, di = n[idx], int(d[idx])
        if ni > 2 * di:
            e_logdet = float(np.sum(digamma((ni - np.arange(1, di + 1)) / 2))) + di * np.log(2 / (ni - 1))
        else:
            k = (ni - 1) * max(di - 1, 1)
            e_logdet = digamma((ni - 1) / 2) + np.log(2 / (ni - 1)) + (di - 1) * (digamma(k / 2) + np.log(2 / k))
        out[idx] = 0.5 * (di / ni - e_logdet) / di
    return out if out.ndim else float(out)


def distortion(samples: torch.Tensor, model) -> dict:
    """Distortion metrics of ``samples`` [N, d] against the target class of ``model``.

    Keys: ``mean_overlap, var_parallel, var_perp, var_parallel_ratio, var_perp_ratio,
    kl_per_dim, kl_per_dim_debiased, class_accuracy`` (None in the infinite-class limit, where
    no Bayes class exists).  ``kl_per_dim_debiased`` subtracts :func:`kl_estimator_bias`.
    """
    mu = model.target_mean
    d = samples.shape[1]
    overlap, perp = _split(samples, mu)
    var_par = float(overlap.var() * (mu @ mu))
    var_perp = float(perp.var(0).sum() / max(d - 1, 1))
    kl = gaussian_kl_per_dim(samples, mu, model.sigma2)
    accuracy = None
    if hasattr(model, "bayes_is_target"):
        accuracy = float(model.bayes_is_target(samples).double().mean())
    return {
        "mean_overlap": float(overlap.mean()),
        "var_parallel": var_par,
        "var_perp": var_perp,
        "var_parallel_ratio": var_par / model.sigma2,
        "var_perp_ratio": var_perp / model.sigma2,
        "kl_per_dim": kl,
        "kl_per_dim_debiased": kl - kl_estimator_bias(samples.shape[0], d),
        "class_accuracy": accuracy,
    }


class TrajectoryRecorder:
    """Sampler callback recording m(t), v(t), mean π_c(t) and the CFG force along the run.

    ``m`` = mean overlap ``x·μ_c/|μ_c|²``; ``v`` = per-coordinate variance orthogonal to μ_c;
    ``pi_target`` = mean posterior weight of the target; ``cfg_force`` = mean ``|F|/√d``
    with ``F = s_w − s_c``.
    """

    def __init__(self, mu: torch.Tensor):
        self.mu = mu
        self.rows: dict[str, list] = {k: [] for k in ("t", "sigma", "w", "m", "v", "pi_target", "cfg_force")}

    def __call__(self, info: dict) -> None:
        x = info["x"]
        overlap, perp = _split(x, self.mu)
        d = x.shape[1]
        lp = info["log_pi_target"]
        self.rows["t"].append(float(info["t"]))
        self.rows["sigma"].append(float(info["sigma"]))
        self.rows["w"].append(float(info["w"]))
        self.rows["m"].append(float(overlap.mean()))
        self.rows["v"].append(float(perp.var(0).sum() / max(d - 1, 1)))
        self.rows["pi_target"].append(None if lp is None else float(torch.exp(lp).mean()))
        self.rows["cfg_force"].append(float(info["cfg_force"].norm(dim=1).mean() / math.sqrt(d)))

    def as_dict(self) -> dict[str, list]:
        """The recorded series, one list per observable (aligned by step)."""
        return {k: list(v) for k, v in self.rows.items()}
