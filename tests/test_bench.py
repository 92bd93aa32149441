"""``cfglab bench``: keys, internal consistency and agreement of the peers (tiny sizes)."""

import json

import pytest
import torch

from cfglab.bench import BenchConfig, naive_posterior, peak_memory_mb, run_bench, sklearn_posterior, _inputs
from cfglab.cli import main
from cfglab.lab.kernel import posterior_stats

pytestmark = pytest.mark.usefixtures("float64")  # tensors built without a dtype are float64

TINY = dict(K=600, N=48, d=8, repeats=1, K_factors=(0.5, 1), N_factors=(0.5, 1), d_factors=(0.5, 1))


@pytest.fixture(scope="module")
def result():
    return run_bench(BenchConfig(**TINY))


def test_bench_reports_the_required_keys(result):
    for key in ("gemm_gflops", "kernel_gflops", "fraction_of_peak", "naive_speedup", "sklearn_speedup",
                "peak_memory_mb"):
        assert isinstance(result[key], float) and result[key] >= 0, key
    assert result["fraction_of_peak"] == pytest.approx(result["kernel_gflops"] / result["gemm_gflops"])
    assert result["gemm_gflops"] == max(v for k, v in result["gemm"].items() if k.endswith("_gflops"))
    flops = 4 * TINY["K"] * TINY["N"] * TINY["d"]
    assert result["kernel_gflops"] == pytest.approx(flops / result["kernel_seconds"] / 1e9)
    assert result["naive_speedup"] == pytest.approx(result["naive_seconds"] / result["kernel_seconds"])
    assert set(result["scaling"]) == {"K", "N", "d"}
    assert [p["K"] for p in result["scaling"]["K"]["points"]] == [300, 600]


def test_bench_peers_agree_with_the_kernel(result):
    acc = result["accuracy"]
    assert acc["naive_mean_rel_err"] < 1e-5 and acc["sklearn_mean_rel_err"] < 1e-5
    assert acc["kernel_on_the_fly_mean_rel_err"] < 1e-5
    assert acc["naive_log_pi0_max_abs_err"] < 1e-3 and acc["sklearn_log_pi0_max_abs_err"] < 1e-3


def test_peer_implementations_match_the_kernel_in_float64():
    cfg = BenchConfig(K=700, N=20, d=5, dtype="float64")
    inp = _inputs(cfg, cfg.K, cfg.N, cfg.d)
    stats = posterior_stats(inp.x, inp.means, None, inp.a, inp.b)
    naive_mean, naive_log_pi = naive_posterior(inp.x, inp.means, inp.a, inp.b)
    sk_mean, sk_log_pi = sklearn_posterior(inp)
    torch.testing.assert_close(stats.mean, naive_mean, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(stats.mean, torch.as_tensor(sk_mean), rtol=1e-10, atol=1e-12)
    mu0 = inp.means[0]
    log_pi = inp.a * inp.x @ mu0 - 0.5 * inp.b * mu0 @ mu0 - stats.log_norm
    torch.testing.assert_close(log_pi, naive_log_pi, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(log_pi, torch.as_tensor(sk_log_pi), rtol=1e-10, atol=1e-10)


def test_peak_memory_sees_a_large_allocation():
    peak, out = peak_memory_mb(lambda: torch.ones(32 * 2**20 // 4).sum(), "cpu")
    if peak is None:
        pytest.skip("no RSS high-water mark on this platform")
    assert 30 < peak < 80 and float(out) == 32 * 2**20 // 4


def test_peers_skipped_when_over_the_memory_limit():
    res = run_bench(BenchConfig(K=4000, N=64, d=4, repeats=1, peer_memory_gb=1e-4, scaling=False))
    assert res["naive_speedup"] is None and res["sklearn_speedup"] is None and res["kernel_gflops"] > 0


def test_cli_bench_prints_one_json_object_and_plots(tmp_path, capsys):
    plot = tmp_path / "scaling.png"
    code = main(["bench", "--K", "400", "--N", "32", "--d", "4", "--repeats", "1", "--no-sklearn",
                 "--plot", str(plot), "--json", "--threads", "1", "--clock", "cpu"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sklearn_speedup"] is None and out["config"]["threads"] == 1
    assert plot.stat().st_size > 1000


@pytest.mark.parametrize("argv", [["--K", "0"], ["--dtype", "float16"], ["--N", "nan"], ["--device", "nodevice"],
                                  ["--budget-mb", "-1"]])
def test_cli_bench_rejects_bad_input(argv, capsys):
    with pytest.raises(SystemExit) as err:
        code = main(["bench", "--json", *argv])
        raise SystemExit(code)
    assert err.value.code == 2
    assert "error" in capsys.readouterr().err
