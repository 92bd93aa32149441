"""``cfglab diffusers profile`` on tiny pipelines saved with save_pretrained (issue 15)."""

import json

import pytest
import torch

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import _tiny_pipelines as tiny  # noqa: E402
from _tiny_pipelines import one_thread  # noqa: E402,F401  (autouse: one torch thread)

from cfglab.cli import main  # noqa: E402
from cfglab.integrations.diffusers import step_sigmas  # noqa: E402
from cfglab.integrations.diffusers.profile import suggest_switch  # noqa: E402


STEPS = 6


@pytest.fixture(autouse=True)
def _float32_default():
    """Pipelines loaded from disk follow the default dtype; users run at float32."""
    torch.set_default_dtype(torch.float32)


@pytest.fixture(scope="module")
def saved_sd(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipe")
    pipe = tiny.sd_pipeline(folder / "tok")
    pipe.save_pretrained(folder / "sd")
    return folder / "sd"


def _profile(capsys, *argv):
    code = main(["diffusers", "profile", *map(str, argv), "--json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else captured.err)


def test_profile_of_a_saved_stable_diffusion_pipeline(saved_sd, tmp_path, capsys, monkeypatch):
    """The recorded force equals ‖ε_c − ε_u‖/‖ε_c‖ read independently from the UNet's outputs."""
    seen = []  # UNet outputs of every call, [2, 4, 8, 8] each: cond then uncond
    original = diffusers.UNet2DConditionModel.forward

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        seen.append(out.sample.detach().clone())
        return out

    monkeypatch.setattr(diffusers.UNet2DConditionModel, "forward", spy)
    code, result = _profile(capsys, saved_sd, "--prompt", "a cat", "--prompt", "an astronaut", "--steps", STEPS,
                            "--scheduler", "EulerAncestralDiscreteScheduler", "--w", 3, "--out", tmp_path)
    assert code == 0, result
    assert result["scheduler"] == "EulerAncestralDiscreteScheduler" and result["conditions"] == ["a cat", "an astronaut"]
    assert len(seen) == 2 * STEPS and len(result["sigma"]) == STEPS
    scheduler = diffusers.EulerAncestralDiscreteScheduler.from_pretrained(saved_sd / "scheduler")
    torch.testing.assert_close(torch.tensor(result["sigma"], dtype=torch.float64), step_sigmas(scheduler, STEPS),
                               rtol=1e-12, atol=0)
    rel = [sum(float((c - u).norm() / c.norm()) for c, u in (seen[i].double().chunk(2), seen[STEPS + i].double().chunk(2)))
           / 2 for i in range(STEPS)]
    torch.testing.assert_close(torch.tensor(result["force_rel"]), torch.tensor(rel), rtol=1e-6, atol=0)
    assert json.loads((tmp_path / "profile.json").read_text())["force_rel"] == result["force_rel"]
    assert (tmp_path / "profile.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_suggested_switch_covers_the_collapsed_tail():
    sigmas = [8.0, 4.0, 2.0, 1.0, 0.5, 0.25]
    out = suggest_switch(sigmas, [0.2, 1.0, 0.6, 0.09, 0.05, 0.01], collapse=0.1)
    assert out["window_steps"] == 3 and out["sigma_collapse"] == 1.0
    assert out["sigma_switch"] == pytest.approx(2 ** 0.5) and out["window_fraction"] == 0.5
    assert suggest_switch(sigmas, [1.0] * 6, collapse=0.1)["sigma_switch"] is None  # no collapse: no suggestion


@pytest.mark.parametrize("argv,message", [
    (["/no/such/pipeline"], "'/no/such/pipeline' is not an existing folder"),
    (["{tmp}"], "is not a local diffusers pipeline folder"),
    (["{sd}", "--label", "3"], "takes --prompt, not --label"),
    (["{sd}", "--scheduler", "NoSuchScheduler"], "unknown diffusers scheduler 'NoSuchScheduler'"),
    (["{sd}", "--w", "0"], "--w must be > -1 and not 0"),
    (["{sd}", "--steps", "1"], "--steps must be at least 2"),
])
def test_profile_refuses_bad_input_with_exit_2(saved_sd, tmp_path, capsys, argv, message):
    argv = [a.format(tmp=tmp_path, sd=saved_sd) for a in argv]
    code, err = _profile(capsys, *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_profile_of_a_saved_dit_pipeline(tmp_path, capsys):
    tiny.dit_pipeline(diffusers.DDIMScheduler()).save_pretrained(tmp_path / "dit")
    code, result = _profile(capsys, tmp_path / "dit", "--label", 1, "--label", 7, "--steps", 5, "--w", 3)
    assert code == 0, result
    assert result["pipeline"] == "DiTPipeline" and result["conditions"] == ["1", "7"] and len(result["force_rel"]) == 5
    assert all(f > 0 for f in result["force_rel"])
    code, err = _profile(capsys, tmp_path / "dit", "--prompt", "a cat")
    assert code == 2 and "takes --label, not --prompt" in err
