"""``cfglab reproduce``: run every section's experiments (one resumable sweep) and write the report."""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from cfglab._validate import CfglabInputError
from cfglab._io import write_json_atomic
from cfglab.report.base import Section, SectionResult
from cfglab.report.profiles import Profile
from cfglab.report.render import write_html, write_markdown
from cfglab.sweep import run_sweep

__all__ = ["SECTIONS", "reproduce"]

TITLE = "cfglab: distortions of classifier-free guidance — reproduction report"


def _sections() -> list[Section]:
    from cfglab.report.lab_sections import INFINITE, SUBEXPONENTIAL
    from cfglab.report.latent_regimes_section import REGIMES
    from cfglab.report.latent_section import LATENT
    from cfglab.report.schedule_section import SHRINKAGE
    from cfglab.report.theory_sections import EXPONENTIAL, PHASE

    return [PHASE, EXPONENTIAL, SUBEXPONENTIAL, INFINITE, SHRINKAGE, LATENT, REGIMES]


SECTIONS: Callable[[], list[Section]] = _sections


def _missing(section: Section) -> str | None:
    """Why a section cannot run (an optional third-party package is missing), or None."""
    for module in section.requires:
        try:
            importlib.import_module(module)
        except ImportError as err:
            return f"needs the optional package {module!r} (pip install 'cfglab[all]'): {err}"
    return None


def _entry(section: Section, status: str, **extra) -> dict:
    return {"name": section.name, "title": section.title, "claim": section.claim, "status": status,
            "supported": None, "rule": "", "sentence": "", "figures": [], "numbers": {}, "notes": [], **extra}


def _plan(sections: list[Section], profile: Profile, entries: dict) -> dict:
    """Tasks of every runnable section (section name -> tasks); others get their entry now."""
    plan = {}
    for section in sections:
        skipped = section.skip(profile)
        if skipped:
            entries[section.name] = _entry(section, "skipped", notes=[skipped])
            continue
        reason = _missing(section)
        if reason:
            entries[section.name] = _entry(section, "not available", notes=[reason])
            continue
        try:
            plan[section.name] = section.tasks(profile)
        except Exception:
            entries[section.name] = _entry(section, "error", error=traceback.format_exc())
    return plan


def _cost(task) -> float:
    """Rough flop count of a task, to start the longest ones first."""
    p = task.params
    d = p.get("d") or 1
    K = p.get("K") or (math.exp(min(p["alpha"] * d, 50.0)) if p.get("alpha") else 1)
    return float(K) * d * p.get("n_samples", 1) * p.get("steps", 1)


def _cpu_accounting(table, main_cpu: float) -> dict:
    """CPU seconds behind the report: every task's (cached ones included) and this process's.

    ``tasks_s / 2 + main_process_s`` estimates the wall time of a fresh run on 2 idle cores,
    which a wall-clock measurement on a shared machine cannot give.
    """
    tasks = float(table["cpu_seconds"].sum()) if "cpu_seconds" in table else 0.0
    return {"tasks_s": tasks, "main_process_s": main_cpu, "estimated_wall_2_cores_s": tasks / 2 + main_cpu}


def _analyze(section: Section, profile: Profile, rows, figdir: Path) -> dict:
    try:
        result: SectionResult = section.analyze(profile, rows, figdir)
    except Exception:
        return _entry(section, "error", error=traceback.format_exc())
    return _entry(section, "ok", supported=result.supported, rule=result.rule, sentence=result.sentence,
                  figures=[dataclasses.asdict(f) for f in result.figures], numbers=result.numbers,
                  notes=list(result.notes))


def reproduce(profile: Profile, out: str | Path, *, scheduler: str | None = None, workers: int = 2,
              progress: Callable[[int, int], None] | None = None,
              sections: list[Section] | None = None) -> dict:
    """Run the sections of ``profile`` and write the report into ``out``; return results.json's content.

    Experiments run as one sweep in ``out/runs`` (resumable: a second call reuses every
    finished task).  A section whose optional package is missing is reported as "not available"; a
    section that raises is reported as "error" with its traceback — neither stops the others.
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CfglabInputError(f"cannot create report folder {str(out)!r}: {err.strerror}") from None
    write_json_atomic(out / "profile.json", profile.to_dict())
    sections = sections if sections is not None else SECTIONS()
    entries: dict = {}
    plan = _plan(sections, profile, entries)
    tasks = sorted({t.id: t for ts in plan.values() for t in ts}.values(), key=_cost, reverse=True)
    sweep = run_sweep(tasks, out / "runs", scheduler=scheduler, workers=workers, progress=progress,
                      meta={"profile": profile.name})
    for section in sections:
        if section.name in plan:
            ids = {t.id for t in plan[section.name]}
            failed = {k: v for k, v in sweep.errors.items() if k in ids}
            if failed:
                entries[section.name] = _entry(section, "error", error=json.dumps(failed, indent=1))
                continue
            rows = sweep.table[sweep.table["task_id"].isin(ids)].dropna(axis=1, how="all")
            entries[section.name] = _analyze(section, profile, rows, out / "figures")
    report = {"title": TITLE, "profile": profile.name, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "wall_s": time.perf_counter() - start,
              "cpu_s": _cpu_accounting(sweep.table, time.process_time() - cpu_start),
              "sweep": {"n_tasks": sweep.n_tasks, "n_cached": sweep.n_cached, "n_computed": sweep.n_computed,
                        "n_failed": sweep.n_failed},
              "sections": {s.name: entries[s.name] for s in sections}}
    write_json_atomic(out / "results.json", report)
    write_markdown(out / "report.md", report)
    write_html(out / "index.html", report)
    return report
