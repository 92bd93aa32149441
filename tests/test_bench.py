"""``cfglab bench``: keys, internal consistency and agreement of the peers (tiny sizes)."""

import json

import pytest
import torch

from cfglab.bench import BenchConfig, naive_posterior, peak_memory_mb, run_bench, sklearn_posterior, _inputs
from cfglab.cli import main
from cfglab.lab.kernel import posterior_stats

pytestmark = pytest.mark.usefixtures("float64")  # tensors built without a dtype are float64

TINY = dict(K=600, N=48, d=8, repeats=1, K_factors=(0.5, 1), N_factors=(0.5, 1), d_factors=(0.5, 1),
            fraction_dims=(4, 16), startup_runs=1)


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


def test_bench_reports_fraction_by_d_threads_and_startup(result):
    assert list(result["fraction_by_d"]) == ["4", "16"]
    for d, row in result["fraction_by_d_detail"].items():
        assert row["fraction"] == pytest.approx(row["kernel_gflops"] / row["gemm_gflops"])
        # the same GEMM reference as the headline: the best of the square and the two tile products
        assert set(row["gemm"]) == set(result["gemm"])
        assert row["gemm_gflops"] == max(v for k, v in row["gemm"].items() if k.endswith("_gflops"))
        assert result["fraction_by_d"][d] == row["fraction"] > 0
    arms = result["by_threads"]
    assert {"1", "auto"} <= set(arms) and all(arms[k]["gflops"] > 0 for k in arms if isinstance(arms[k], dict))
    assert 1 <= arms["auto_threads_now"]
    assert result["startup_s"]["help"] > 0 and result["startup_s"]["theory_transition"] > 0


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
    res = run_bench(BenchConfig(K=4000, N=64, d=4, repeats=1, peer_memory_gb=1e-4, scaling=False, fraction_dims=(),
                                thread_comparison=False, startup_runs=0))
    assert res["naive_speedup"] is None and res["sklearn_speedup"] is None and res["kernel_gflops"] > 0


def test_cli_bench_prints_one_json_object_and_plots(tmp_path, capsys):
    plot = tmp_path / "scaling.png"
    code = main(["bench", "--K", "400", "--N", "32", "--d", "4", "--repeats", "1", "--no-sklearn",
                 "--plot", str(plot), "--json", "--threads", "1", "--clock", "cpu", "--startup-runs", "0",
                 "--fraction-dims", "4"])
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


def test_sampler_profile_phases_are_disjoint_and_cover_the_run(tmp_path):
    """Phases are disjoint stretches of one thread's timeline: they sum to at most the profiled
    total (1 % + 1 ms for the profiler's µs timestamps); the rest is Python overhead."""
    from cfglab.bench import PHASES, SamplerProfileConfig, plot_sampler_profile, run_sampler_profile

    res = run_sampler_profile(SamplerProfileConfig(dims=(6, 10), n_samples=16, steps=2, repeats=1))
    assert [r["d"] for r in res["rows"]] == [6, 10] and [r["K"] for r in res["rows"]] == [4, 8]
    for row in res["rows"]:
        phases = row["phases_s_per_step"]
        measured = sum(phases[k] for k in PHASES if k != "python_overhead")
        assert all(phases[k] >= 0 for k in PHASES if k != "python_overhead")
        assert phases["kernel"] > 0 and phases["observables"] > 0 and phases["sampler_arithmetic"] > 0
        assert measured <= phases["total"] * 1.01 + 1e-3 / 2  # per step: 2 steps share the 1 ms
        assert sum(phases[k] for k in PHASES) == pytest.approx(phases["total"])
        assert sum(row["phase_fractions"].values()) == pytest.approx(1.0)
    assert set(res["growth"]) == {"alpha", "fitted_rate", "flops_rate"}
    plot_sampler_profile(res, tmp_path / "sampler.png")
    assert (tmp_path / "sampler.png").stat().st_size > 1000


def test_cli_bench_sampler_json(capsys):
    code = main(["bench", "--sampler", "--dims", "6", "--n-samples", "8", "--steps", "2", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"][0]["d"] == 6 and "fitted_rate" not in out["growth"]
