"""CFG-force profile of a user's own diffusers pipeline: where does guidance act? (docs/diffusers.md)

The paper (§4) finds the CFG force large at intermediate noise and collapsing late in the run,
where positive guidance only distorts; a negative window belongs there. This module samples a
pipeline with a recording guider at a constant weight ``w`` and reports, per step σ,

* ``force_rms``: per-element RMS of ``pred_c − pred_u`` in the model's output space (what the
  guider combines: ε, v or flow), averaged over prompts/labels and batch;
* ``force_rel``: ``‖pred_c − pred_u‖ / ‖pred_c‖`` per sample, averaged likewise;

the collapse σ (the largest step σ below which ``force_rel`` stays under ``collapse`` times
its maximum) and a suggested ``σ_switch`` = the switch placed on that step boundary, i.e. the
negative window covers exactly the collapsed tail.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from cfglab._validate import CfglabInputError, positive_int
from cfglab.guidance.schedules import Constant
from cfglab.integrations.diffusers._sigma import step_sigmas
from cfglab.integrations.diffusers.guider import CfglabGuidance

__all__ = ["RecordingGuidance", "pipeline_kind", "load_pipeline", "profile_pipeline", "suggest_switch", "plot_profile"]

DEFAULT_PROMPTS = ["a photograph of an astronaut riding a horse", "a red car in the rain", "a bowl of fruit"]


class RecordingGuidance(CfglabGuidance):
    """:class:`CfglabGuidance` that records σ and the CFG force of every guided step in ``records``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.records: list[dict[str, float]] = []

    def forward(self, pred_cond=None, pred_uncond=None):
        if pred_cond is not None and pred_uncond is not None:
            delta = (pred_cond - pred_uncond).flatten(1).double()  # [B, n]
            cond = pred_cond.flatten(1).double()  # [B, n]
            self.records.append({
                "step": int(self._step), "sigma": float(self._sigma),
                "force_rms": float(delta.pow(2).mean(1).sqrt().mean()),
                "force_rel": float((delta.norm(dim=1) / cond.norm(dim=1).clamp_min(1e-30)).mean()),
            })
        return super().forward(pred_cond, pred_uncond)


def pipeline_kind(path: str | Path, prompts=None, labels=None) -> str:
    """``"text"`` (a UNet text-to-image pipeline) or ``"class"`` (DiT) from ``model_index.json``; checks inputs.

    Reads only the folder's index, so bad input is refused before any weights are loaded.
    """
    index = Path(path) / "model_index.json"
    if not index.is_file():
        raise CfglabInputError(f"{str(path)!r} is not a local diffusers pipeline folder (no model_index.json)")
    components = json.loads(index.read_text())
    kind = "text" if "unet" in components and "tokenizer" in components else "class" if "transformer" in components \
        else None
    return _check_conditions(kind, components.get("_class_name"), prompts, labels)


def _check_conditions(kind: str | None, name, prompts, labels) -> str:
    if kind is None:
        raise CfglabInputError(f"cannot profile {name!r}: need a Stable Diffusion or DiT pipeline")
    if kind == "class" and prompts:
        raise CfglabInputError("a class-conditional DiT pipeline takes --label, not --prompt")
    if kind == "text" and labels:
        raise CfglabInputError("a text-to-image pipeline takes --prompt, not --label")
    return kind


def load_pipeline(path: str | Path, scheduler: str | None = None):
    """``DiffusionPipeline.from_pretrained`` of a local folder only (never a hub download)."""
    import diffusers
    import transformers

    pipeline_kind(path)
    if scheduler is not None and not isinstance(getattr(diffusers, scheduler, None), type):
        raise CfglabInputError(f"unknown diffusers scheduler {scheduler!r}")
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    pipe = diffusers.DiffusionPipeline.from_pretrained(str(path), local_files_only=True)
    if scheduler is not None:
        pipe.scheduler = getattr(diffusers, scheduler).from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to("cuda" if torch.cuda.is_available() else "cpu")


def suggest_switch(sigmas: list[float], force_rel: list[float], collapse: float) -> dict[str, Any]:
    """Collapse σ and σ_switch from a force profile over decreasing step σ (see the module docstring)."""
    peak = max(force_rel)
    tail = 0  # steps at the end whose relative force stays below collapse · peak
    while tail < len(force_rel) and force_rel[-1 - tail] <= collapse * peak:
        tail += 1
    out: dict[str, Any] = {"peak_force_rel": peak, "peak_sigma": sigmas[force_rel.index(peak)],
                           "collapse": collapse, "window_steps": tail}
    if tail == 0 or tail == len(sigmas):
        out.update(sigma_collapse=None, sigma_switch=None)
        return out
    hi, lo = sigmas[-1 - tail], sigmas[-tail]
    out.update(sigma_collapse=lo, sigma_switch=math.sqrt(hi * lo) if lo > 0 else hi / 2,
               window_fraction=tail / len(sigmas))
    return out


@torch.no_grad()
def profile_pipeline(pipe, *, prompts: list[str] | None = None, labels: list[int] | None = None, steps: int = 30,
                     w: float = 6.5, collapse: float = 0.1, seed: int = 0) -> dict[str, Any]:
    """Sample ``pipe`` at constant ``w`` once per prompt (Stable Diffusion) or label (DiT); profile the force."""
    from cfglab.integrations.diffusers.pipelines import generate_dit, generate_stable_diffusion

    steps = positive_int("steps", steps)
    if not (w > -1 and w != 0):
        raise CfglabInputError(f"w must be > -1 and not 0 (both passes must run), got {w!r}")
    kind = "text" if hasattr(pipe, "unet") and hasattr(pipe, "encode_prompt") else \
        "class" if hasattr(getattr(pipe, "transformer", None), "config") else None
    is_dit = _check_conditions(kind, type(pipe).__name__, prompts, labels) == "class"
    conditions = (labels or [0, 1, 2]) if is_dit else (prompts or DEFAULT_PROMPTS)
    runs = []
    for k, condition in enumerate(conditions):
        guider = RecordingGuidance(Constant(w))
        gen = torch.Generator(pipe.device).manual_seed(seed + k)
        if is_dit:
            generate_dit(pipe, [condition], guider, num_inference_steps=steps, generator=gen, output_type="latent")
        else:
            generate_stable_diffusion(pipe, condition, guider, num_inference_steps=steps, generator=gen,
                                      output_type="latent")
        runs.append(guider.records)
    sigmas = [r["sigma"] for r in runs[0]]  # [evaluations]
    mean = {key: [sum(run[i][key] for run in runs) / len(runs) for i in range(len(sigmas))]
            for key in ("force_rms", "force_rel")}
    per_step = step_sigmas(pipe.scheduler, steps).tolist()  # [steps]
    first = [sigmas.index(s) for s in per_step]  # first evaluation of each step
    return {
        "pipeline": type(pipe).__name__, "scheduler": type(pipe.scheduler).__name__, "steps": steps, "w": w,
        "conditions": [str(c) for c in conditions], "sigma": sigmas,
        "force_rms": mean["force_rms"], "force_rel": mean["force_rel"],
        **suggest_switch(per_step, [mean["force_rel"][i] for i in first], collapse),
    }


def plot_profile(result: dict[str, Any], path: str | Path) -> None:
    """PNG of the relative and RMS CFG force against σ, with the suggested σ_switch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cfglab._io import save_figure_atomic

    fig, ax = plt.subplots(figsize=(6, 3.6))
    sigma = [s if math.isfinite(s) else float("nan") for s in result["sigma"]]
    ax.plot(sigma, result["force_rel"], "o-", ms=3, label="‖pred_c − pred_u‖ / ‖pred_c‖")
    ax.plot(sigma, result["force_rms"], "s--", ms=3, label="RMS(pred_c − pred_u)")
    if result.get("sigma_switch"):
        ax.axvline(result["sigma_switch"], color="k", lw=0.8, label=f"σ_switch = {result['sigma_switch']:.3g}")
    ax.set(xscale="log", yscale="log", xlabel="σ (cfglab, VE)", ylabel="CFG force")
    ax.set_title(f"{result['pipeline']} · {result['scheduler']} · {result['steps']} steps · w = {result['w']:g}",
                 fontsize=8)
    ax.invert_xaxis()
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=120)
