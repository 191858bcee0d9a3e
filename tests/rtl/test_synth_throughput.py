"""`einloom synth`'s throughput column: attention GOP/s at Fmax and the 2D utilization
(rtl/fpga/throughput.py, einloom/commands/synth.py)."""
from __future__ import annotations

import json

import pytest

from einloom import cli
from einloom.rtl.fpga.flow import SynthResult
from einloom.rtl.fpga.resources import Resources
from einloom.rtl.fpga.throughput import attention_ops, load_measured_cycles, throughput_rows, visible_pairs
from einloom.einsum.errors import ToolError

ARCH = "examples/archs/rtl-4x4-int8.yaml"

MANIFEST = {
    "top": "core",
    "parameters": {"array_2d": {"rows": 4, "cols": 4}, "rtl": {"head_dim": 16, "value_dim": 16}},
    "latency": {"examples": [{"P": 64, "M": 64, "causal": False, "compute_cycles": 15585},
                             {"P": 64, "M": 64, "causal": True, "compute_cycles": 8505}]},
}


def brute_pairs(p: int, m: int) -> int:
    return sum(1 for q in range(p) for k in range(m) if k <= q + m - p)


@pytest.mark.parametrize("p,m", [(64, 64), (1, 9), (8, 24), (13, 6), (5, 5)])
def test_visible_pairs_match_the_bottom_right_mask(p, m):
    assert visible_pairs(p, m, False) == p * m
    assert visible_pairs(p, m, True) == brute_pairs(p, m)
    assert attention_ops(p, m, 16, 8, True) == 2 * brute_pairs(p, m) * 24


def test_rows_from_the_manifest():
    plain, causal = throughput_rows(MANIFEST, 76.32)
    # the figure: 131,072 MACs in 15,585 cycles on 16 PEs is 53%
    assert plain.macs_2d == 131072 and plain.utilization_2d == pytest.approx(131072 / (16 * 15585))
    assert round(100 * plain.utilization_2d) == 53
    assert plain.ops == 2 * 131072 and plain.cycles_source == "manifest"
    assert plain.gops == pytest.approx(2 * 131072 * 76.32e6 / 15585 / 1e9)
    assert plain.seconds == pytest.approx(15585 / 76.32e6)
    assert causal.macs_2d == (64 * 65 // 2) * 32 and causal.gops == pytest.approx(causal.ops * 76.32e-3 / 8505)
    none = throughput_rows(MANIFEST, None)
    assert [r.gops for r in none] == [None, None] and none[0].utilization_2d == plain.utilization_2d
    assert throughput_rows({"top": "mac8"}, 100.0) == []          # --verilog / --demo: no attention


def test_measured_cycles_replace_the_manifest(tmp_path):
    verify = {"top": "core", "passed": True, "cases": [
        {"name": "m64", "P": 64, "M": 64, "causal": False, "passed": True, "cycles": 15600},
        {"name": "bp", "P": 10, "M": 11, "backpressure": 0.5, "passed": True, "cycles": 999},   # stalled
        {"name": "neg", "P": 3, "M": 3, "corrupt": True, "expect_fail": True, "passed": False, "cycles": 77},
        {"name": "decode", "P": 1, "M": 11, "causal": True, "passed": True, "cycles": 300},
    ]}
    path = tmp_path / "v.json"
    path.write_text(json.dumps(verify))
    measured = load_measured_cycles(str(path))
    assert measured == {(64, 64, False): 15600, (1, 11, True): 300}
    rows = {(r.P, r.M, r.causal): r for r in throughput_rows(MANIFEST, 50.0, measured)}
    assert rows[(64, 64, False)].cycles == 15600 and rows[(64, 64, False)].cycles_source == "measured"
    assert rows[(64, 64, True)].cycles_source == "manifest"
    assert rows[(1, 11, True)].ops == 2 * 11 * 32


@pytest.mark.parametrize("text,match", [
    ("not json", "is not JSON"), ('{"x": 1}', "has no 'cases' list"), ('{"cases": [3]}', r"cases\[0\] is not"),
    ('{"cases": [{"passed": true, "P": 2}]}', "lacks P, M or cycles"),
    ('{"cases": [{"passed": true, "P": 2, "M": 2, "cycles": 0}]}', "has 0 cycles"),
])
def test_bad_cycles_file_is_a_tool_error(tmp_path, text, match):
    path = tmp_path / "v.json"
    path.write_text(text)
    with pytest.raises(ToolError, match=match):
        load_measured_cycles(str(path))


def _fake_synthesize(fmax):
    def synthesize(verilog, top, target, **kwargs):
        return SynthResult(top=top, target=target, part="45k", device="LFE5U-45F", part_selection="chosen",
                           resources=Resources({"luts": 10, "ffs": 20, "dsps": 1, "brams": 2, "carry": 3},
                                               {"luts": 16}, {}),
                           utilization={}, fits=True, fmax_mhz=fmax,
                           pnr=None if fmax is None else {"fmax_mhz": fmax, "seed": 1, "target_mhz": 100.0,
                                                          "router": "router1"})
    return synthesize


def test_cli_table_and_json_have_the_throughput(monkeypatch, capsys):
    import einloom.rtl.fpga as fpga
    from einloom.rtl import RtlConfig, generate
    monkeypatch.setattr(fpga, "synthesize", _fake_synthesize(80.0))
    design = generate(RtlConfig.from_yaml(ARCH))
    cycles = design.manifest["latency"]["examples"][0]["compute_cycles"]
    assert cli.main(["synth", "--arch", ARCH, "--target", "ecp5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    row = data["throughput"]["rows"][0]
    assert (row["P"], row["M"], row["causal"], row["cycles"]) == (64, 64, False, cycles)
    assert row["gops"] == pytest.approx(2 * 64 * 64 * 32 * 80e6 / cycles / 1e9)
    assert data["throughput"]["fmax_mhz"] == 80.0 and len(data["throughput"]["rows"]) == 4
    assert cli.main(["synth", "--arch", ARCH, "--target", "ecp5"]) == 0
    out = capsys.readouterr().out
    assert "throughput at Fmax 80.0 MHz" in out and "GOP/s" in out and "2D util" in out
    line = next(text for text in out.splitlines() if text.split()[:3] == ["64", "64", "no"])
    assert f"{cycles:,}" in line and f"{row['gops']:.4g}" in line and f"{100 * row['utilization_2d']:.1f}%" in line


def test_cli_cycles_errors_are_one_line(tmp_path, monkeypatch, capsys):
    import einloom.rtl.fpga as fpga
    monkeypatch.setattr(fpga, "synthesize", _fake_synthesize(None))
    other = tmp_path / "v.json"
    other.write_text(json.dumps({"top": "einloom_rtl_8x8_int8", "cases": []}))
    assert cli.main(["synth", "--arch", ARCH, "--target", "ecp5", "--cycles", str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert "measured einloom_rtl_8x8_int8, not einloom_rtl_4x4_int8" in err[-1] and "v.json" in err[-1]
    assert cli.main(["synth", "--demo", "2x2", "--target", "ecp5", "--cycles", str(other)]) == 2
    assert "--cycles needs --arch" in capsys.readouterr().err
    assert cli.main(["synth", "--arch", ARCH, "--target", "ecp5", "--cycles", str(tmp_path / "no.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.slow
def test_yosys_only_synthesis_reports_utilization(tmp_path, capsys):
    """The real flow, synthesis only (no P&R: no Fmax, so no GOP/s): the throughput rows carry the
    manifest's cycles and the 2D utilization."""
    argv = ["synth", "--arch", ARCH, "--target", "ecp5", "--no-pnr", "--json", "--cache-dir", str(tmp_path)]
    assert cli.main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    examples = data["manifest"]["latency"]["examples"]
    rows = data["throughput"]["rows"]
    assert [r["cycles"] for r in rows] == [e["compute_cycles"] for e in examples]
    assert all(r["gops"] is None and 0.3 < r["utilization_2d"] < 1 for r in rows)
    assert data["resources"]["dsps"] > 0
