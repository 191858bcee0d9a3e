"""``einloom sweep`` with ``synth:`` on a generated core's architecture: each point's ``fpga`` result
is the core the generator builds for the point's variant (fixed-function, lane core) or says refused,
with the core's cycles and throughput; ``einloom report sweep`` tabulates it."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from einloom.report.sweep import load_sweep_data

from einloom.sweep.runner import run_sweep
from einloom.sweep.spec import load_sweep
from einloom.sweep.store import Store
from sweep_helpers import write_sweep

ROOT = Path(__file__).resolve().parents[2]
WORKLOAD = """\
name: tiny-bf16
source: "a test shape for the 2x2 bf16 core"
batch: 1
heads: 1
head_dim: 8
model_dim: 8
ffn_dim: 32
seq_len: 16
causal: false
phase: prefill
"""
SWEEP = f"""\
name: hw
arch: {ROOT / "examples" / "archs" / "rtl-2x2-bf16.yaml"}
variants: [fusemax-1pass, relu-attention, VARIANT]
workloads: [{{model: WORKLOAD, seq_len: 16}}]
mapping: auto
parameters:
  - {{path: clock_mhz, values: [50]}}
synth: {{target: ecp5, max_pes: 16}}
"""


class _Fake:
    """What :func:`einloom.rtl.fpga.synthesize` returns, without Yosys: area grows with the Verilog."""

    def __init__(self, verilog: str, top: str):
        self.target, self.part, self.fits, self.fmax_mhz = "ecp5", "25k", True, None
        self.verilog_sha256 = top
        self.resources = SimpleNamespace(counts={"luts": len(verilog) // 100, "ffs": 10, "dsps": 1, "brams": 0})


@pytest.fixture()
def fake_synth(monkeypatch):
    seen = []

    def synthesize(verilog, top, target, part=None, pnr=True, **_kw):
        seen.append(top)
        return _Fake(verilog, top)
    monkeypatch.setattr("einloom.rtl.fpga.synthesize", synthesize)
    return seen


def _rows(tmp_path, variant):
    (tmp_path / "w.yaml").write_text(WORKLOAD)
    text = SWEEP.replace("WORKLOAD", str(tmp_path / "w.yaml")).replace("VARIANT", variant)
    run_sweep(load_sweep(write_sweep(tmp_path, text)), tmp_path / "out", progress=False)
    with Store(tmp_path / "out") as store:
        return {r["spec"]["variant"]: r for r in store.rows()}


def test_each_point_synthesizes_the_core_its_variant_gets_or_says_refused(tmp_path, fake_synth):
    rows = _rows(tmp_path, "lightning")
    fpga = {v: (r.get("result") or {}).get("fpga") for v, r in rows.items()}
    assert fpga["fusemax-1pass"]["core"] == "fixed" and fpga["relu-attention"]["core"] == "lane"
    assert fpga["fusemax-1pass"]["luts"] != fpga["relu-attention"]["luts"]     # two designs, not one
    assert sorted(fake_synth) == ["einloom_lane_core", "einloom_rtl_2x2_bf16_clock_mhz_50"]
    for v in ("fusemax-1pass", "relu-attention"):
        f = fpga[v]
        assert f["cycles"] > 0 and f["useful_ops"] == 2 * 64 * 64 * 16     # the core's own P = M = 64
        assert f["gops"] == pytest.approx(f["useful_ops"] / (f["cycles"] / 50e6) / 1e9)
        assert f["clock_source"].startswith("stated")
    # a variant no core runs says refused, with the Einsum, not zeros; report sweep's table says so too
    assert rows["lightning"]["status"] == "done"
    fpga = rows["lightning"]["result"]["fpga"]
    assert fpga["core"] == "refused" and fpga["refused_einsum"] == "QKI" and "luts" not in fpga
    data = load_sweep_data(tmp_path / "out")
    table = {r["variant"]: r for r in data.rows}
    assert table["lightning"]["fpga_core"] == "refused" and table["lightning"]["fpga_luts"] is None
    assert table["relu-attention"]["fpga_core"] == "lane" and table["relu-attention"]["fpga_cycles"] > 0
