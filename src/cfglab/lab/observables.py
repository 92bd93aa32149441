"""Distortion observables of guided samples against the true conditional (SPEC §4).

The target conditional is ``N(μ_c, σ² I_d)``.  Headline: ``kl_per_dim``, the KL divergence
of the Gaussian fitted to the samples from the true conditional, per dimension.  The mean
overlap ``m`` and the variances along / orthogonal to μ_c explain it.
"""

from __future__ import annotations

import math

import torch

__all__ = ["distortion", "gaussian_kl_per_dim", "TrajectoryRecorder"]


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


def distortion(samples: torch.Tensor, model) -> dict:
    """Distortion metrics of ``samples`` [N, d] against the target class of ``model``.

    Keys: ``mean_overlap, var_parallel, var_perp, var_parallel_ratio, var_perp_ratio,
    kl_per_dim, class_accuracy`` (None in the infinite-class limit, where no Bayes class
    exists).
    """
    mu = model.target_mean
    d = samples.shape[1]
    overlap, perp = _split(samples, mu)
    var_par = float(overlap.var() * (mu @ mu))
    var_perp = float(perp.var(0).sum() / max(d - 1, 1))
    accuracy = None
    if hasattr(model, "bayes_is_target"):
        accuracy = float(model.bayes_is_target(samples).double().mean())
    return {
        "mean_overlap": float(overlap.mean()),
        "var_parallel": var_par,
        "var_perp": var_perp,
        "var_parallel_ratio": var_par / model.sigma2,
        "var_perp_ratio": var_perp / model.sigma2,
        "kl_per_dim": gaussian_kl_per_dim(samples, mu, model.sigma2),
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
