"""Fitted d-exponents of the theory–simulation error (cfglab.theory.scaling, ``cfglab theory scaling``)."""

import json

import numpy as np
import pytest

from cfglab.cli import main
from cfglab.theory.scaling import error_table, fit_exponents


def _rows(p_inf=1.0, p_fin=2.0, seeds=12, noise=1e-4, seed=0):
    """Synthetic per-seed rows: sim − inf = d^{−p_inf}, sim − fin = 0.5 d^{−p_fin}, plus seed noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in (20, 30, 40, 50, 60):
        for s in range(seeds):
            row = {"d": d, "seed": s}
            for q in ("mean_overlap", "var_perp", "var_parallel"):
                sim = 1.0 + noise * rng.standard_normal()
                row.update({f"sim_{q}": sim, f"inf_{q}": sim - d**-p_inf - noise * rng.standard_normal(),
                            f"fin_{q}": sim - 0.5 * d**-p_fin})
            rows.append(row)
    return rows


def test_exponents_are_recovered_with_honest_uncertainty():
    fits = fit_exponents(_rows(), n_boot=300)
    assert fits["inf_mean_overlap"]["p"] == pytest.approx(1.0, abs=0.02)
    assert fits["fin_var_perp"]["p"] == pytest.approx(2.0, abs=0.02)
    lo, hi = fits["inf_var_parallel"]["p_95"]
    assert lo < 1.0 < hi and fits["inf_var_parallel"]["p_se"] < 0.05
    noisy = fit_exponents(_rows(noise=3e-3), n_boot=300)  # errors buried in the seed scatter at large d
    assert noisy["fin_var_perp"]["p_se"] > 10 * fits["fin_var_perp"]["p_se"]


def test_error_table_has_standard_errors_and_one_seed_gives_nan():
    t = error_table(_rows(seeds=1))
    assert all(np.isnan(r["se_inf_mean_overlap"]) for r in t)
    t = error_table(_rows())
    assert [r["d"] for r in t] == [20, 30, 40, 50, 60] and all(r["se_inf_var_perp"] > 0 for r in t)


def test_cli_reads_validate_output_and_rejects_bad_files(tmp_path, capsys):
    path = tmp_path / "table.json"
    path.write_text(json.dumps({"rows": _rows()}))
    png = tmp_path / "s.png"
    assert main(["theory", "scaling", str(path), "--n-boot", "100", "--out", str(png), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["exponents"]) == {f"{t}_{q}" for t in ("inf", "fin") for q in ("mean_overlap", "var_perp", "var_parallel")}
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["theory", "scaling", str(tmp_path / "missing.json"), "--json"]) == 2
    assert "cannot read" in capsys.readouterr().err
