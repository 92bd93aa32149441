"""Tiny-profile training: determinism on CPU, checkpoint cache, corrupt checkpoints, CLI."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from cfglab._validate import CfglabInputError
from cfglab.latent.checkpoint import checkpoint_dir, load_model, load_or_train
from cfglab.latent.data import load_data
from cfglab.latent.model import build_unet, seeded_init
from cfglab.latent.sample import generate
from cfglab.latent.train import PROFILES, cpu_threads, train_model

TINY = PROFILES["tiny"]


@pytest.fixture(scope="module")
def data():
    return load_data()


@pytest.fixture(scope="module")
def cached(tiny_latent_cache, data):
    """The session's tiny model (conftest), reloaded from its cache: (cache root, model, folder)."""
    with cpu_threads(1):
        model, folder, trained = load_or_train(TINY, data)
    assert not trained and folder == checkpoint_dir(TINY, data.data_hash)
    assert str(tiny_latent_cache) in str(folder)
    return tiny_latent_cache, model, folder


def _state(model):
    return {
        **{f"ae.{k}": v for k, v in model.autoencoder.state_dict().items()},
        **{f"d.{k}": v for k, v in model.denoiser.state_dict().items()},
    }


@pytest.mark.slow  # trains the tiny model a second time; runs in the slow tier
def test_training_and_sampling_are_deterministic(cached, data):
    _, model, _ = cached
    with cpu_threads(1):
        again = train_model(TINY, data)
    a, b = _state(model), _state(again)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    labels = torch.arange(10).repeat_interleave(3)
    x1 = generate(model, labels, "constant:w=2", steps=4, seed=5)
    x2 = generate(again, labels, "constant:w=2", steps=4, seed=5)
    assert torch.equal(x1, x2) and not torch.equal(
        x1, generate(model, labels, "constant:w=2", steps=4, seed=6)
    )

    def init(seed):
        with seeded_init(seed):
            return build_unet(TINY.arch, (2, 4, 4), 10).conv_in.weight

    assert torch.equal(init(0), init(0)) and not torch.equal(
        init(0), init(1)
    )  # the seed is used, scoped


def test_checkpoint_is_reused_and_round_trips(cached, data, monkeypatch):
    root, model, folder = cached
    monkeypatch.setenv("CFGLAB_CACHE", str(root))
    reused, folder2, trained = load_or_train(TINY, data)
    assert not trained and folder2 == folder
    a, b = _state(model), _state(reused)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(model.latent_std, reused.latent_std)
    meta = json.loads((folder / "config.json").read_text())
    assert meta["data_hash"] == data.data_hash and meta["config"]["profile"] == "tiny"


def _copy(folder, dest):
    import shutil

    shutil.copytree(folder, dest)
    return dest


def test_corrupt_and_mismatched_checkpoints_raise(cached, data, tmp_path):
    _, _, folder = cached
    bad = _copy(folder, tmp_path / "bad")
    (bad / "denoiser.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CfglabInputError, match="denoiser.safetensors"):
        load_or_train(TINY, data, checkpoint=bad)
    assert (
        bad / "denoiser.safetensors"
    ).read_bytes() == b"not a safetensors file"  # never overwritten
    with pytest.raises(CfglabInputError, match="different config"):
        load_model(_copy(folder, tmp_path / "cfg"), expect=dataclasses.replace(TINY, seed=3))
    with pytest.raises(CfglabInputError, match="different data"):
        load_model(_copy(folder, tmp_path / "hash"), data_hash="0" * 64)
    part = _copy(folder, tmp_path / "partial")
    (part / "autoencoder.safetensors").unlink()
    with pytest.raises(CfglabInputError, match="autoencoder.safetensors"):
        load_or_train(TINY, data, checkpoint=part)
    cfg = _copy(folder, tmp_path / "json")
    (cfg / "config.json").write_text("{")
    with pytest.raises(CfglabInputError, match="config.json"):
        load_model(cfg)


def test_cli_corrupt_checkpoint_exits_2_with_one_line(cached, tmp_path):
    _, _, folder = cached
    bad = _copy(folder, tmp_path / "bad")
    (bad / "autoencoder.safetensors").write_bytes(b"\x00" * 10)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cfglab",
            "latent",
            "evaluate",
            "--profile",
            "tiny",
            "--checkpoint",
            str(bad),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "autoencoder.safetensors" in lines[0]


def test_cli_evaluate_json_keys(cached, tmp_path):
    root, _, _ = cached
    env = {**__import__("os").environ, "CFGLAB_CACHE": str(root)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cfglab",
            "latent",
            "evaluate",
            "--profile",
            "tiny",
            "--schedule",
            "constant:w=1",
            "--n-per-class",
            "7",
            "--steps",
            "3",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for key in (
        "separability",
        "vendi",
        "within_class_var",
        "precision",
        "recall",
        "coverage",
        "fd",
    ):
        assert np.isfinite(out[key]) and np.isfinite(out["reference"][key])
    assert out["n"] == 70 and out["schedule"] == "constant:w=1"


@pytest.mark.parametrize("edit, match", [
    (lambda m: m.update(latent_std="abc"), "corrupt"),
    (lambda m: m.update(latent_std=[0.0] * len(m["latent_std"])), r"latent_std must be finite and > 0, got \[0.0"),
    (lambda m: m.update(latent_std=[float("nan")] * len(m["latent_std"])), "latent_std must be finite"),
    (lambda m: m.update(latent_mean=[1.0]), "latent_mean/latent_std"),
])
def test_checkpoint_with_bad_latent_normalisation_is_refused(cached, tmp_path, edit, match):
    _, _, folder = cached
    bad = _copy(folder, tmp_path / "bad")
    meta = json.loads((bad / "config.json").read_text())
    edit(meta)
    (bad / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CfglabInputError, match=match):
        load_model(bad)


def test_checkpoint_with_nan_weights_is_refused(cached, tmp_path):
    from safetensors.torch import load_file, save_file

    _, _, folder = cached
    bad = _copy(folder, tmp_path / "nan")
    state = load_file(bad / "denoiser.safetensors")
    key = sorted(state)[0]
    state[key] = torch.full_like(state[key], float("nan"))
    save_file(state, bad / "denoiser.safetensors")
    with pytest.raises(CfglabInputError, match=f"denoiser.safetensors.*{key}.*NaN"):
        load_model(bad)


def test_evaluate_and_study_refuse_bad_input_before_training(tmp_path, monkeypatch, capsys):
    """Nothing is trained: the model cache is empty and training would fail loudly."""
    import cfglab.latent.checkpoint as checkpoint
    from cfglab.cli import main

    monkeypatch.setenv("CFGLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(checkpoint, "train_model", lambda *a, **k: pytest.fail("trained before checking input"))
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [
        (["latent", "evaluate", "--profile", "tiny", "--n-per-class", "3"], "n_per_class must be >= nearest_k + 2"),
        (["latent", "study", "--profile", "tiny", "--out", str(afile)], "exists and is not a folder"),
        (["latent", "sample", "--profile", "tiny", "--out", str(tmp_path)], "is a folder"),
        (["latent", "train", "--profile", "tiny", "--checkpoint", str(afile / "ck")], "cannot be written"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("labels, match", [(np.zeros(40, int), "at least 2 classes"), (None, "cannot read")])
def test_one_class_or_truncated_npz_is_refused(tmp_path, labels, match):
    from cfglab.latent.data import load_data

    path = tmp_path / "d.npz"
    np.savez(path, images=np.random.default_rng(0).random((40, 8, 8)),
             labels=np.arange(40) % 2 if labels is None else labels)
    if labels is None:
        path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CfglabInputError, match=match):
        load_data(str(path))


@pytest.mark.slow
def test_two_processes_training_the_same_model_share_one_checkpoint(tmp_path):
    """Both runs succeed; exactly one trains (the other waits on the lock, then loads); one checkpoint."""
    code = ("import json; from cfglab.latent.checkpoint import load_or_train; from cfglab.latent.data import load_data;"
            " from cfglab.latent.train import PROFILES, cpu_threads\n"
            "with cpu_threads(1):\n"
            "    _, folder, trained = load_or_train(PROFILES['tiny'], load_data())\n"
            "print(json.dumps({'folder': str(folder), 'trained': trained}))")
    env = {**__import__("os").environ, "CFGLAB_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    runs = [json.loads(o[0]) for o in outs]
    assert sorted(r["trained"] for r in runs) == [False, True]
    assert runs[0]["folder"] == runs[1]["folder"]
    assert [p.name for p in (tmp_path / "latent").iterdir()] == [__import__("pathlib").Path(runs[0]["folder"]).name]
