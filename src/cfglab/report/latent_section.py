"""Report section: the separability–diversity study on a real latent diffusion model (SPEC §7).

Runs :func:`cfglab.latent.study` (trained model reused from its checkpoint cache) and shows
its Pareto plot and sample grids.
"""

from __future__ import annotations

from cfglab.report.base import Figure, Section, SectionResult

__all__ = ["LATENT"]


def _tasks(profile):
    return []


def _analyze(profile, rows, figdir) -> SectionResult:
    raise NotImplementedError("the latent study is not wired yet")


LATENT = Section(
    name="latent", title="Real latent diffusion: separability vs diversity",
    claim="On a real latent diffusion model, a negative-guidance window raises diversity at equal separability compared with constant CFG.",
    requires=("cfglab.latent.study",), tasks=_tasks, analyze=_analyze)
