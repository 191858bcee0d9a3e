"""The shipped FuseMax experiment against the paper's headline and the artifact's per-point results.

The experiment (examples/experiments/fusemax-paper.yaml) runs the real mapper on 4 models x 6
sequence lengths x {Unfused, FLAT, FuseMax}, attention and end to end.  Its ``reference`` block holds
the paper's abstract (6.7x at 79% of FLAT's energy, 5.3x at 83% end to end) and the FuseMax
artifact's pregenerated per-point CSVs (fusemax-artifact-points.csv).  These tests pin how close
einloom gets, so a change to the cost models, the mapper or a baseline that moves the reproduction
shows up here.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from einloom.experiment import headline_comparison, load_experiment, point_comparison, run_experiment
from einloom.report.experiment import summary_text

PAPER = Path(__file__).resolve().parents[1] / "examples" / "experiments" / "fusemax-paper.yaml"


@pytest.fixture(scope="module")
def paper():
    experiment = load_experiment(PAPER)
    results = run_experiment(experiment, progress=False)
    return experiment, results.rows, results.to_dict()


def _rows(rows, config, scope="attention"):
    return [r for r in rows if r["configuration"] == config and r["scope"] == scope and not r.get("error")]


def test_every_point_evaluates(paper):
    _, rows, _ = paper
    assert len(rows) == 4 * 6 * 3 * 2 and not [r for r in rows if r.get("error")]


def test_headline_within_ten_percent_of_the_paper(paper):
    experiment, rows, data = paper
    claims = headline_comparison(rows, data["experiment"]["reference"])
    assert {(c["scope"], c["configuration"], c["versus"]) for c in claims} == {
        ("attention", "FuseMax", "FLAT"), ("end_to_end", "FuseMax", "FLAT")}
    for claim in claims:
        assert claim["points"] == 24
        for key in ("speedup", "energy_ratio"):
            assert abs(claim[key]["difference"]) <= 0.10, (claim["scope"], key, claim[key])
    attention = next(c for c in claims if c["scope"] == "attention")
    assert attention["speedup"]["einloom"] == pytest.approx(6.7, rel=0.02)


def test_utilizations_reproduce(paper):
    _, rows, _ = paper
    fusemax = _rows(rows, "FuseMax")
    assert all(r["util_2d"] >= 0.98 for r in fusemax if r["seq_len"] >= 65536)    # "nearly 100%"
    flat = _rows(rows, "FLAT")
    for r in flat:
        full = 0.25 if r["model"] == "xlm" else 0.125
        if r["seq_len"] <= 16384:                       # softmax-bound on the 1D array, E across columns
            assert r["util_2d"] == pytest.approx(full, abs=1e-3)
            assert r["util_1d"] == pytest.approx(1.0, abs=1e-3)
        elif r["seq_len"] == 65536:
            # XLM's 64K row tile no longer fits twice (double-buffered between the interleaved arrays,
            # docs/schedule.md): FLAT spills and is DRAM-bound there, below the softmax bound
            assert r["util_2d"] == pytest.approx(full, abs=1e-3) or (r["model"] == "xlm" and r["util_2d"] < full)


def test_points_track_the_artifact(paper):
    _, rows, data = paper
    table = {(p["configuration"], p["scope"]): p for p in point_comparison(rows, data["experiment"]["reference"])}
    assert set(table) == {(c, s) for c in ("FLAT", "FuseMax") for s in ("attention", "end_to_end")} | {
        ("Unfused", "attention")}
    for (config, scope), p in table.items():
        assert p["points"] == 24
        lat, energy = p["latency_s"], p["energy_pj"]
        if config == "Unfused":
            # three kernels as in the artifact; one tiling per mapping makes the softmax kernel hold 256
            # rows of SN, so from 256K on it spills SN where the artifact holds one row: up to 44% slower
            assert 1.0 <= lat["min"] and lat["max"] <= 1.5, p
            assert 0.9 <= energy["min"] and energy["max"] <= 1.02, p
        elif config == "FuseMax":
            # same binding, interleaving and P1 rule as the artifact: latency to 1%; energy 2-3% higher
            # because einloom charges the 2D register file, which the artifact's per-PE counts leave out
            assert 0.999 <= lat["min"] and lat["max"] <= 1.01, p
            assert 1.0 <= energy["min"] and energy["max"] <= 1.04, p
        else:
            # FLAT: einloom's builder searches granularity/spill/bypass itself; at >= 256K it finds a
            # mapping up to 5.5% faster and 12% cheaper than the artifact's FLAT.  At XLM 64K the row tile
            # passed from the 2D to the 1D array must be held twice (the arrays run interleaved), which
            # does not fit: einloom's FLAT spills there, 12% slower and 17% costlier than the artifact's
            assert 0.94 <= lat["min"] and lat["max"] <= 1.13, p
            assert 0.87 <= energy["min"] and energy["max"] <= 1.18, p
    assert table[("FuseMax", "attention")]["util_2d_max_abs_diff"] < 0.005
    assert table[("FLAT", "attention")]["util_2d_max_abs_diff"] < 0.03      # XLM 64K: 0.223 vs 0.25 (spills)


def test_summary_shows_the_reference(paper):
    _, _, data = paper
    text = summary_text(data)
    assert "against the published headline" in text and "per point, einloom / reference" in text
    assert "fusemax-artifact-points.csv" in text
