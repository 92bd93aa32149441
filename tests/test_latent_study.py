"""The schedule study: schedule grid, seed-paired comparison at equal separability, outputs."""

import json

import numpy as np
import pytest

from cfglab.guidance.schedules import Constant, NegativeWindow
from cfglab.latent.sample import karras_sigmas
from cfglab.experiments.latent_study import STUDY_PRESETS, compare_at_equal_separability, study_schedules


def _row(family, seeds, w=None):
    return {
        "family": family,
        "label": f"{family} {w}",
        "w": w,
        "seeds": seeds,
        "mean": {k: float(np.mean([s[k] for s in seeds])) for k in seeds[0]},
    }


def test_schedules_switch_for_the_last_fraction_of_steps():
    cfg = STUDY_PRESETS["full"]
    sig = karras_sigmas(cfg.steps)
    rows = study_schedules(cfg, sig, calibrated=Constant(1.0))
    windows = [r for r in rows if r["family"] == "negative_window"]
    assert rows[-1]["family"] == "calibrated" and len(windows) >= 3
    for r in windows:
        s: NegativeWindow = r["schedule"]
        w = np.array([s(float(x)) for x in sig[:-1]])
        n_neg = int((w == -1).sum())
        assert n_neg == round(r["last_fraction"] * cfg.steps) and (w[:-n_neg] == s.w_pos).all()
    assert {r["last_fraction"] for r in windows} >= {0.3, 0.5}


def test_comparison_interpolates_first_crossing_per_seed():
    # constant curve per seed: separability 0.5, 0.7, 0.9, 0.9 at w = 0, 1, 2, 3; vendi 5, 4, 3, 1
    const = [
        _row("constant", [{"separability": s + d, "vendi": v + d} for d in (0.0, 0.01)], w)
        for w, s, v in [(0, 0.5, 5.0), (1, 0.7, 4.0), (2, 0.9, 3.0), (3, 0.9, 1.0)]
    ]
    win = _row(
        "negative_window", [{"separability": 0.8 + d, "vendi": 4.0 + 2 * d} for d in (0.0, 0.01)]
    )
    sat = _row("interval", [{"separability": 0.9 + d, "vendi": 3.0 + d} for d in (0.0, 0.01)])
    out = compare_at_equal_separability(const + [win, sat], 2, metrics=("vendi",))
    # seed 0: constant at sep 0.8 is halfway between w=1 and w=2 -> 3.5, Δ = 0.5;
    # seed 1: 3.51 -> Δ = 0.51
    assert out[0]["delta_vendi"]["mean"] == pytest.approx(0.505)
    assert out[0]["delta_vendi"]["std"] == pytest.approx(np.std([0.5, 0.51], ddof=1))
    assert out[0]["in_range"]
    # saturated separability: compared with the smallest w reaching it (w = 2, vendi 3), not w = 3
    assert out[1]["delta_vendi"]["mean"] == pytest.approx(0.0, abs=1e-12)


def test_quick_study_end_to_end_on_tiny_model(tmp_path, monkeypatch, tiny_latent_cache):
    from cfglab.experiments.latent_study import latent_study

    import dataclasses

    from cfglab.experiments import latent_study as study

    tiny = dataclasses.replace(study.STUDY_PRESETS["quick"], steps=2)
    monkeypatch.setitem(study.STUDY_PRESETS, "quick", tiny)
    res = latent_study(profile="tiny", preset="quick", out=tmp_path / "out", seeds=3, n_per_class=7)
    saved = json.loads((tmp_path / "out" / "study.json").read_text())
    assert (tmp_path / "out" / "pareto.png").stat().st_size > 0 and (
        tmp_path / "out" / "table.md"
    ).exists()
    assert len(saved["files"]["grids"]) == len(saved["rows"])
    assert saved["reference"]["mean"]["separability"] > 0.9
    for row in saved["rows"]:
        assert len(row["seeds"]) == 3 and set(row["std"]) == set(row["mean"])
    assert len(res["comparison"]) == len([r for r in res["rows"] if r["family"] != "constant"])


def test_interrupted_study_resumes_only_missing_tasks(tmp_path, tiny_latent_cache):
    """The study's tasks live in a sweep folder: delete some finished rows (an interrupted run)
    and the rerun computes exactly those, with the same table as the clean run."""
    import shutil

    from cfglab.experiments.latent_study import StudyConfig, latent_study

    cfg = StudyConfig(seeds=(0, 1), n_per_class=7, steps=2, constant_w=(0.0, 2.0), interval_w=(),
                      window_w_pos=(1.0,), window_fractions=(0.5,), window_extra=())
    clean = latent_study(profile="tiny", study=cfg, work=tmp_path / "clean", keep_images=True)
    n = clean["sweep"]["n_tasks"]
    assert clean["sweep"] == {"n_tasks": n, "n_cached": 0, "n_computed": n} and n == 2 * len(clean["rows"])
    shutil.copytree(tmp_path / "clean", tmp_path / "resumed")
    rows = sorted((tmp_path / "resumed" / "tasks").glob("*.parquet"))
    for p in rows[::2]:  # the tasks an interruption did not finish
        p.unlink()
    resumed = latent_study(profile="tiny", study=cfg, work=tmp_path / "resumed", keep_images=True)
    missing = len(rows[::2])
    assert resumed["sweep"] == {"n_tasks": n, "n_cached": n - missing, "n_computed": missing}
    for key in ("rows", "reference", "comparison", "calibration"):
        assert resumed[key] == clean[key], key
    assert resumed["images"].keys() == clean["images"].keys()
    assert all((resumed["images"][k] == clean["images"][k]).all() for k in clean["images"])
