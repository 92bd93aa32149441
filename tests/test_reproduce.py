"""``cfglab reproduce``: the tiny test profile writes a complete offline report; failures are reported, not hidden."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cfglab.lab.observables import kl_estimator_bias
from cfglab.report import PROFILES, Section, SectionResult, reproduce
from cfglab.report.lab_sections import SUBEXPONENTIAL
from cfglab.report.theory_sections import pi_crossing


@pytest.fixture(scope="module")
def test_report(tmp_path_factory):
    import matplotlib

    matplotlib.use("Agg")
    out = tmp_path_factory.mktemp("report")
    return out, reproduce(PROFILES["test"], out, workers=0)


@pytest.mark.slow  # the full test-profile report; runs in the slow tier
def test_report_files_are_written_and_open_offline(test_report):
    out, report = test_report
    for name in ("index.html", "report.md", "results.json", "profile.json", "runs/results.parquet"):
        assert (out / name).is_file(), name
    pngs = list((out / "figures").glob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    page = (out / "index.html").read_text()
    assert not re.search(r"<script|<link|src=\"http|url\(http", page)  # no external assets
    assert page.count('src="data:image/png;base64,') == sum(len(s["figures"]) for s in report["sections"].values())
    assert json.loads((out / "results.json").read_text())["profile"] == "test"
    assert json.loads((out / "profile.json").read_text())["name"] == "test"


@pytest.mark.slow  # the full test-profile report; runs in the slow tier
def test_every_section_has_a_status_and_figures_carry_a_verdict(test_report):
    _, report = test_report
    assert set(report["sections"]) == {"phase", "exponential", "subexponential", "infinite", "shrinkage", "latent",
                                       "latent_regimes"}
    for name, s in report["sections"].items():
        assert s["status"] in ("ok", "skipped"), (name, s["status"], s.get("error"), s["notes"])
        if s["status"] == "skipped":
            assert s["notes"], "the reason must be named"
            continue
        word = {True: "these numbers support", False: "these numbers contradict", None: "these numbers are inconclusive about"}
        assert word[s["supported"]] in s["sentence"]
        assert s["rule"] and "2 s" in s["rule"], name  # the rule is written next to the verdict
        assert s["figures"] and all(re.search(r"these numbers (support|contradict|are inconclusive about)",
                                              f["caption"]) for f in s["figures"])
    assert report["sections"]["latent"]["status"] == "skipped"  # disabled in the test profile


def test_one_seed_gives_inconclusive_verdicts_with_their_rules(test_report):
    """The test profile runs one seed: no standard error, so no verdict may be decided."""
    out, report = test_report
    md = (out / "report.md").read_text()
    for name, s in report["sections"].items():
        if s["status"] == "ok":
            assert s["supported"] is None, name
            assert f"*Rule.* {s['rule']}" in md


@pytest.mark.slow  # the full test-profile report; runs in the slow tier
def test_rerun_resumes_without_recomputing(test_report):
    out, first = test_report
    second = reproduce(PROFILES["test"], out, workers=0)
    assert second["sweep"]["n_computed"] == 0
    assert second["sweep"]["n_cached"] == first["sweep"]["n_tasks"]


def _section(name, requires=(), analyze=None):
    def fail(profile, rows, figdir):
        raise RuntimeError("boom in analysis")

    return Section(name, name.title(), "a claim", requires, lambda profile: [], analyze or fail)


def test_missing_modules_and_errors_are_reported_not_raised(tmp_path):
    sections = [_section("missing", requires=("cfglab.no_such_module",)), _section("broken"),
                _section("fine", analyze=lambda p, r, f: SectionResult([], {"x": 1}, "fine sentence", None))]
    report = reproduce(PROFILES["test"], tmp_path, workers=0, sections=sections)
    s = report["sections"]
    assert s["missing"]["status"] == "not available" and "cfglab.no_such_module" in s["missing"]["notes"][0]
    assert s["broken"]["status"] == "error" and "RuntimeError: boom in analysis" in s["broken"]["error"]
    assert s["fine"]["status"] == "ok"
    assert "boom in analysis" in (tmp_path / "index.html").read_text()
    assert "boom in analysis" in (tmp_path / "report.md").read_text()


def _subexp_rows(kl_by_d, n, seeds=2, spread=1e-3):
    """Seeds scattered by ±spread around the given distortions; var⊥ distorted like the KL, relative to the sampler."""
    from cfglab.report.lab_sections import _sampler_var_ratio

    v_em = _sampler_var_ratio(PROFILES["test"], PROFILES["test"].subexponential.steps)
    cfg = PROFILES["test"].subexponential
    sign = [(-1) ** s for s in range(seeds)]
    rows = [{"d": d, "seed": s, "kl_per_dim": kl + kl_estimator_bias(n, d) + spread * sign[s], "mean_overlap": 1 + kl,
             "var_perp_ratio": v_em * (1 - kl - spread * sign[s])} for d, kl in zip(cfg.ds, kl_by_d) for s in range(seeds)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("kl_by_d, seeds, spread, expected", [
    ((0.2, 0.05, 0.01), 2, 1e-3, True), ((0.2, 0.2, 0.19), 2, 1e-3, False), ((0.01, 0.05, 0.2), 2, 1e-3, False),
    ((0.2, 0.05, 0.049), 2, 1e-3, None),  # 0.049 vs 0.25 × 0.2 = 0.05: within 2 s.e. of the threshold
    ((0.2, 0.05, 0.01), 2, 0.05, None),  # a decay hidden in the seed scatter
    ((0.2, 0.05, 0.01), 1, 0.0, None)])  # one seed: no standard error, never a decision
def test_subexponential_verdict_follows_the_numbers(tmp_path, kl_by_d, seeds, spread, expected):
    import matplotlib

    matplotlib.use("Agg")
    profile = PROFILES["test"]
    result = SUBEXPONENTIAL.analyze(profile, _subexp_rows(kl_by_d, profile.subexponential.n_samples, seeds, spread), tmp_path)
    assert result.supported is expected
    assert result.numbers["kl_per_dim_debiased"] == pytest.approx(list(kl_by_d), abs=1e-9)


def _phase_rows(errors_by_d, t_c, seeds):
    """Unguided trajectories whose π = 1/2 crossing lies ``err ± 0.01`` (over seeds) above t_c."""
    t = np.linspace(6, 0, 601)
    rows = []
    for d, err in errors_by_d.items():
        for s in range(seeds):
            cross = t_c + err + (0.01 * (-1) ** s if seeds > 1 else 0.0)
            rows.append({"alpha": 0.2, "d": d, "seed": s, "traj_t": json.dumps(t.tolist()),
                         "traj_pi_target": json.dumps((1 / (1 + np.exp(20 * (t - cross)))).tolist())})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("errors, seeds, expected", [({8: 0.3, 12: 0.1}, 4, True), ({8: 0.1, 12: 0.3}, 4, False),
                                                     ({8: 0.1, 12: 0.1}, 4, None), ({8: 0.3, 12: 0.1}, 1, None)])
def test_phase_verdict_requires_the_error_to_shrink(tmp_path, errors, seeds, expected):
    """Shrinking error: supported; growing: contradicted; flat (the old rule passed it) or one seed: inconclusive."""
    import matplotlib

    from cfglab.report.theory_sections import PHASE
    from cfglab.theory.transition import transition

    matplotlib.use("Agg")
    t_c = transition(0.2, 0.5, 1.0).t_c
    result = PHASE.analyze(PROFILES["test"], _phase_rows(errors, t_c, seeds), tmp_path)
    assert result.supported is expected
    assert result.numbers["per_alpha"][0.2]["error"] == pytest.approx(list(errors.values()), abs=2e-3)


def test_pi_crossing_interpolates_a_logistic_crossing():
    t = np.linspace(6, 0, 301)
    t_c = 1.2345
    pi = 1 / (1 + np.exp(8 * (t - t_c)))
    assert pi_crossing(list(t), list(pi)) == pytest.approx(t_c, abs=1e-3)
    assert pi_crossing([3.0, 2.0, 1.0], [0.1, 0.2, 0.3]) is None
    assert math.isclose(pi_crossing([3.0, 2.0], [0.0, 1.0]), 2.5)


@pytest.mark.slow  # the full test-profile report; runs in the slow tier
def test_cli_prints_one_json_object_and_rejects_unknown_profiles(test_report, capsys):
    from cfglab.cli import main

    out, _ = test_report
    assert main(["reproduce", "--profile", "test", "--out", str(out), "--workers", "0", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["profile"] == "test" and summary["index"].endswith("index.html")
    assert summary["latent"] == summary["latent_regimes"] == "skipped" and summary["subexponential"] in ("supported", "contradicted", "inconclusive")
    assert main(["reproduce", "--profile", "huge", "--json"]) == 2
    assert "unknown profile 'huge'" in capsys.readouterr().err


@pytest.mark.parametrize("mean, sem, expected", [(0.5, 0.1, True), (-0.5, 0.1, False), (0.1, 0.1, None),
                                                 (0.5, None, None), (0.5, math.nan, None)])
def test_latent_verdict_is_three_way(mean, sem, expected):
    """A lower Vendi score is a contradiction, no detectable difference (or one seed) is inconclusive."""
    from cfglab.report.latent_section import _verdict

    study = {"comparison": [{"family": "negative_window", "in_range": True, "label": "w",
                             "delta_vendi": {"mean": mean, "sem": sem}}]}
    assert _verdict(study)[0] is expected


def _kl_stats(kl_by_d, seeds, spread=0.005):
    """group_stats-like table of the bias-corrected KL/d at α = 0.3 (and α = 0.1 at the first d)."""
    from cfglab.report.base import group_stats

    rows = [{"d": d, "alpha": 0.3, "seed": s, "kl": kl + spread * (-1) ** s} for d, kl in kl_by_d.items()
            for s in range(seeds)] + [{"d": min(kl_by_d), "alpha": 0.1, "seed": s, "kl": 0.01} for s in range(seeds)]
    return group_stats(pd.DataFrame(rows), ["d", "alpha"], "kl")


@pytest.mark.parametrize("kl_by_d, seeds, expected", [({10: 0.10, 40: 0.11}, 4, True),  # O(1): stays put
                                                      ({10: 0.10, 40: 0.02}, 4, False),  # decays towards 0
                                                      ({10: 0.10, 40: 0.05}, 4, None),  # at the threshold
                                                      ({10: 0.10, 40: 0.11}, 1, None)])  # one seed
def test_exponential_o1_part_tests_a_distortion_bounded_away_from_zero(kl_by_d, seeds, expected):
    from cfglab.report.theory_sections import _bounded_away

    ok, numbers = _bounded_away(_kl_stats(kl_by_d, seeds))
    assert ok is expected and numbers["alpha"] == 0.3 and numbers["d"] == [10, 40]
