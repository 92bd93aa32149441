"""The latent section of ``cfglab reproduce`` end to end on the tiny latent model (slow: trains it once)."""

import dataclasses

import pytest

from cfglab.report import PROFILES

pytest.importorskip("cfglab.experiments.latent_study")


@pytest.mark.slow
def test_latent_section_writes_pareto_and_sample_grid(tmp_path, monkeypatch, slow_scale):
    import matplotlib

    matplotlib.use("Agg")
    from cfglab.report.latent_section import LATENT

    monkeypatch.setenv("CFGLAB_CACHE", str(tmp_path / "cache"))
    test = PROFILES["test"]
    profile = dataclasses.replace(test, latent=dataclasses.replace(test.latent, enabled=True))
    result = LATENT.analyze(profile, None, tmp_path / "figures")
    assert result.numbers["trained_now"] is True
    assert [f.path for f in result.figures] == ["figures/latent_pareto.png", "figures/latent_samples.png"]
    assert all((tmp_path / f.path).read_bytes()[:4] == b"\x89PNG" for f in result.figures)
    word = {True: "these numbers support", False: "these numbers contradict", None: "these numbers are inconclusive about"}
    assert word[result.supported] in result.sentence and "2 standard errors" in result.rule
    again = LATENT.analyze(profile, None, tmp_path / "figures")  # reuses study.json: same numbers
    assert again.numbers == result.numbers
