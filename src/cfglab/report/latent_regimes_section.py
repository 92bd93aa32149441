"""Report section: the regime study of negative-guidance windows on trained latent models.

Runs :func:`cfglab.experiments.latent_regimes.regime_study` into ``latent_regimes/`` next to
the report (its sweep store makes a rerun resume, not resample) and reports its answer:
whether the window's gain at equal separability changes with α/α_c as the theory predicts.
"""

from __future__ import annotations

import shutil

from cfglab.report.base import Figure, Section, SectionResult, fmt, verdict

__all__ = ["REGIMES"]


def _analyze(profile, rows, figdir) -> SectionResult:
    from cfglab.experiments.latent_regimes import regime_study

    s = profile.regimes
    folder = figdir.parent / "latent_regimes"
    result = regime_study(profile=s.model, preset=s.preset, conditionings=s.conditionings or None,
                          out=folder)  # fmt: skip
    answer = result["answer"]
    parts = []
    for name, c in result["conditionings"].items():
        best = _best(c)
        parts.append(f"{name}: α/α_c = {fmt(c['alpha_ratio'])}, best window family {best}")
    sentence = f"{'; '.join(parts)}; these numbers {verdict(answer['supported'])} the claim"
    figdir.mkdir(parents=True, exist_ok=True)
    figures = []
    for key, caption in (("force", "CFG force ‖D_c − D_u‖(σ) per conditioning, resolution σ marked."),
                         ("gain", "Variance-ratio gain of the best window family vs α/α_c.")):  # fmt: skip
        target = figdir / f"latent_regimes_{key}.png"
        shutil.copyfile(result["files"][key], target)
        figures.append(Figure(str(target.relative_to(figdir.parent)), f"{caption} {sentence}"))
    numbers = {"answer": answer, "seconds": result["seconds"],
               "conditionings": {n: {k: c[k] for k in ("alpha", "alpha_c", "alpha_ratio",
                                                        "sigma_res_measured", "sigma_res_predicted")}
                                 for n, c in result["conditionings"].items()}}  # fmt: skip
    return SectionResult(figures, numbers, sentence, answer["supported"], rule=answer["rule"])


def _best(c: dict) -> str:
    """The best frontier gain over samplers and families, with its CI and verdict."""
    rows = [(f"{fam} ({sampler})", r) for sampler, s in c["samplers"].items()
            for fam, r in s["frontier"].items() if r.get("ci")]  # fmt: skip
    if not rows:
        return "not comparable (no overlap with constant CFG's separability range)"
    label, r = max(rows, key=lambda lr: lr[1]["mean"])
    return (f"{label} changes the latent variance ratio at equal log-posterior by {fmt(r['mean'])}"
            f" [{fmt(r['ci'][0])}, {fmt(r['ci'][1])}] ({r['verdict']})")


REGIMES = Section(
    name="latent_regimes", title="Real latent diffusion: negative windows across the regime α/α_c",
    claim=("A negative-guidance window raises diversity at equal separability where classes overlap"
           " (α/α_c > 1) and is inert where they are resolvable (α/α_c < 0.5), as the theory predicts."),
    requires=("sklearn", "diffusers", "safetensors"),
    tasks=lambda profile: [], analyze=_analyze,
    skip=lambda profile: None if profile.regimes.enabled else f"disabled in the {profile.name!r} profile")
