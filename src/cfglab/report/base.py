"""The pieces a report section is made of, and helpers shared by the sections.

A section is a :class:`Section`: the modules it needs, the sweep tasks it wants run
(``tasks(profile) -> list[Task]``) and ``analyze(profile, rows, figdir) -> SectionResult``,
which turns the finished rows (a DataFrame) into figures, numbers and one sentence whose
verdict is computed from those numbers.

Every verdict is three-way — supported, contradicted or inconclusive — and comes with its
rule, written next to it in the report.  A quantity measured with one seed has no standard
error (NaN, never 0), so every test that needs one comes out inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from cfglab._io import save_figure_atomic
from cfglab.sweep import Task, tasks_from_dict

__all__ = ["Figure", "SectionResult", "Section", "sim_tasks", "save_figure", "group_stats", "verdict", "LABELS",
           "sign_test", "all_of", "K_SE"]

K_SE = 2.0  # a difference counts when it exceeds K_SE standard errors
LABELS = {True: "supported", False: "contradicted", None: "inconclusive"}


@dataclass(frozen=True)
class Figure:
    """A PNG file (relative to the report folder) and its one-sentence caption."""

    path: str
    caption: str


@dataclass
class SectionResult:
    """What a section contributes to the report."""

    figures: list[Figure]
    numbers: dict
    sentence: str
    supported: bool | None  # None: the measurement cannot decide (or no theory to compare)
    notes: list[str] = field(default_factory=list)
    rule: str = ""  # how ``supported`` was computed from ``numbers``, printed next to the verdict


@dataclass(frozen=True)
class Section:
    """One claim of the paper: what it needs, what it runs, how it is judged."""

    name: str
    title: str
    claim: str
    requires: tuple[str, ...]
    tasks: Callable
    analyze: Callable
    skip: Callable = lambda profile: None  # profile -> reason to skip this section, or None


def sim_tasks(profile, name: str, params: dict, grid: dict, seeds: int) -> list[Task]:
    """``simulate`` tasks over ``grid`` x seeds with the profile's shared lab settings."""
    lab = profile.lab
    base = {"sigma2": lab.sigma2, "s2": lab.s2, "T": lab.T, "sampler": lab.sampler}
    return tasks_from_dict({"kind": "simulate", "name": name, "params": {**base, **params},
                            "grid": grid, "seeds": seeds})


def save_figure(fig, figdir: Path, name: str) -> str:
    """Save a matplotlib figure as ``figdir/name.png``; return its path relative to the report."""
    figdir.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    save_figure_atomic(fig, figdir / f"{name}.png", dpi=110)
    return f"{figdir.name}/{name}.png"


def group_stats(rows, by: str | list[str], column: str):
    """Mean and standard error of ``column`` per group (over seeds); one seed gives ``sem`` = NaN."""
    g = rows.groupby(by)[column]
    stats = g.agg(["mean", "std", "count"]).reset_index()
    stats["sem"] = stats["std"] / np.sqrt(stats["count"])  # NaN for a single seed: unknown, not 0
    return stats


def sign_test(diff: float, se: float, k: float = K_SE) -> bool | None:
    """True if ``diff > k·se``, False if ``diff < −k·se``, None otherwise or when ``se`` is unknown (NaN, ≤ 0)."""
    if not (math.isfinite(diff) and math.isfinite(se) and se > 0):
        return None
    return True if diff > k * se else (False if diff < -k * se else None)


def all_of(parts) -> bool | None:
    """Combine verdicts: contradicted if any part is, supported if all are, otherwise inconclusive."""
    parts = list(parts)
    if any(p is False for p in parts):
        return False
    return True if parts and all(p is True for p in parts) else None


def verdict(ok: bool | None) -> str:
    """The word used in sentences for a computed verdict."""
    return {True: "support", False: "contradict", None: "are inconclusive about"}[ok]


def fmt(x: float | None, digits: int = 3) -> str:
    """Short number formatting for sentences."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}g}"
