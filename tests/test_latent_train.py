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
