"""``einloom lanes``: the program's sections and cycles, --check, --json, --verilog, one-line refusals."""
from __future__ import annotations

import json
from pathlib import Path

from einloom.cli import main

ROOT = Path(__file__).resolve().parents[3]
ARCH = str(ROOT / "examples/archs/rtl-4x4-int8.yaml")


def test_lanes_prints_sections_and_checks(capsys):
    rc = main(["lanes", "causal-1pass", "--arch", ARCH, "--ranks", "P=6,M=9,E=8,F=4", "--check",
               "--format", "int16", "--listing"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "key tile M0 R = 4" in out and "3 tiles per query block" in out
    assert "weight" in out and "cycles/block" in out and "wout" in out
    assert "bit for bit on 24 output elements: equal" in out


def test_lanes_json_cycles_add_up(capsys):
    rc = main(["lanes", "fusemax-1pass", "--arch", ARCH, "--ranks", "P=4,M=16,E=4,F=4", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and data["tiles"] == 4 and data["latency_source"] == "rtl"
    assert data["cycles_per_block"] == sum(data["cycles_per_section"].values()) > 0
    assert "wout" in " ".join(data["program"]["sections"]["weight"])


def test_lanes_arch_latencies_change_the_cycles(capsys):
    main(["lanes", "fusemax-1pass", "--arch", ARCH, "--ranks", "P=4,M=16,E=4,F=4", "--json"])
    rtl = json.loads(capsys.readouterr().out)["cycles_per_block"]
    main(["lanes", "fusemax-1pass", "--arch", ARCH, "--ranks", "P=4,M=16,E=4,F=4", "--json", "--latency", "arch"])
    arch = json.loads(capsys.readouterr().out)["cycles_per_block"]
    assert arch < rtl          # the int8 core's units (exp 4, recip 5) are faster than fp32's


def test_lanes_refusal_is_one_line(capsys):
    rc = main(["lanes", "lightning", "--arch", ARCH])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "Einsum QKI" in err and "no query rank" in err


def test_lanes_writes_a_programmable_lane(tmp_path, capsys):
    path = tmp_path / "lane.v"
    rc = main(["lanes", "fusemax-1pass", "--arch", ARCH, "--ranks", "P=4,M=8,E=4,F=2", "--verilog", str(path),
               "--also", "sliding-window"])
    assert rc == 0 and "programmable" in capsys.readouterr().out
    text = path.read_text()
    assert "module lane" in text and "load_en" in text
