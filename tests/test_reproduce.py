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


def test_every_section_has_a_status_and_figures_carry_a_verdict(test_report):
    _, report = test_report
    assert set(report["sections"]) == {"phase", "exponential", "subexponential", "infinite", "shrinkage", "latent",
                                       "latent_regimes"}
    for s in report["sections"].values():
        assert s["status"] in ("ok", "not available", "error", "skipped")
        if s["status"] in ("not available", "skipped"):
            assert s["notes"], "a missing module or the reason must be named"
        if s["status"] == "ok":
            word = {True: "these numbers support", False: "these numbers do not support", None: "these numbers are inconclusive about"}
            assert word[s["supported"]] in s["sentence"]
            assert s["figures"] and all(re.search(r"these numbers (support|do not support|are inconclusive about)",
                                                  f["caption"]) for f in s["figures"])
    for name in ("subexponential", "infinite", "exponential"):  # lab-only sections always run
        assert report["sections"][name]["status"] == "ok", report["sections"][name].get("error")


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


def _subexp_rows(kl_by_d, n):
    cfg = PROFILES["test"].subexponential
    rows = [{"d": d, "seed": s, "kl_per_dim": kl + kl_estimator_bias(n, d) + 1e-4 * s, "mean_overlap": 1 + kl,
             "var_perp_ratio": 1 - kl} for d, kl in zip(cfg.ds, kl_by_d) for s in range(2)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("kl_by_d, expected", [((0.2, 0.05, 0.01), True), ((0.2, 0.2, 0.19), False),
                                               ((0.01, 0.05, 0.2), False)])
def test_subexponential_verdict_follows_the_numbers(tmp_path, kl_by_d, expected):
    import matplotlib

    matplotlib.use("Agg")
    profile = PROFILES["test"]
    result = SUBEXPONENTIAL.analyze(profile, _subexp_rows(kl_by_d, profile.subexponential.n_samples), tmp_path)
    assert result.supported is expected
    assert result.numbers["kl_per_dim_debiased"] == pytest.approx([k + 5e-5 for k in kl_by_d], abs=1e-6)


def test_pi_crossing_interpolates_a_logistic_crossing():
    t = np.linspace(6, 0, 301)
    t_c = 1.2345
    pi = 1 / (1 + np.exp(8 * (t - t_c)))
    assert pi_crossing(list(t), list(pi)) == pytest.approx(t_c, abs=1e-3)
    assert pi_crossing([3.0, 2.0, 1.0], [0.1, 0.2, 0.3]) is None
    assert math.isclose(pi_crossing([3.0, 2.0], [0.0, 1.0]), 2.5)


def test_cli_prints_one_json_object_and_rejects_unknown_profiles(test_report, capsys):
    from cfglab.cli import main

    out, _ = test_report
    assert main(["reproduce", "--profile", "test", "--out", str(out), "--workers", "0", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["profile"] == "test" and summary["index"].endswith("index.html")
    assert summary["latent"] == summary["latent_regimes"] == "skipped"
    assert summary["subexponential"] in ("supported", "not supported")
    assert main(["reproduce", "--profile", "huge", "--json"]) == 2
    assert "unknown profile 'huge'" in capsys.readouterr().err
