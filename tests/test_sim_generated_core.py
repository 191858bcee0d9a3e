"""``einloom sim`` on an architecture with an ``rtl:`` section reports the generated core's cycles.

The figures asserted here are the RTL's measured cycles: 8,267 / 4,437 (4x4 int8), 2,195 / 1,287
(8x8 int8) at M = P = 64, E = F = 16 and 9,553 / 5,119 (4x4 bf16, E = F = 8) are rtl/README.md's table, which
``tests/sim/test_rtl_core.py`` ties to ``rtl.attention.compute_cycles`` (the cocotb testbench asserts
it equal to the measured count of every unstalled run; Verilator-measured in the closing notes); the
lane core's 1,395 for alibi on 4x4 int8 at P=8 M=12 E=F=8 (pipelined fixed-point lane units, the PEs'
product registers and the systolic value column) is the count Amaranth's simulator measured
(``benchmarks/lane_core_variants.py``, measured = model); ``einloom verify`` (Verilator) measured 1,365
before the 2D array was pipelined and 1,049 before the lane units were.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hostile import run_cli

ROOT = Path(__file__).resolve().parents[1]
ARCHS = ROOT / "examples" / "archs"
SMALL = ROOT / "examples" / "workloads" / "rtl-small.yaml"


def _sim(spec: str, arch: str, *extra: str) -> dict:
    status, out, err = run_cli(["sim", spec, "--arch", ARCHS / f"{arch}.yaml", "--workload", SMALL, "--json",
                                *extra])
    assert status == 0, err
    return json.loads(out)


@pytest.mark.parametrize("spec,arch,cycles", [
    ("fusemax-1pass", "rtl-4x4-int8", 8267), ("causal-1pass", "rtl-4x4-int8", 4437),
    ("fusemax-1pass", "rtl-8x8-int8", 2195), ("causal-1pass", "rtl-8x8-int8", 1287)])
def test_sim_reports_the_fixed_cores_measured_cycles(spec, arch, cycles):
    out = _sim(spec, arch)
    core = out["generated_core"]
    assert core["core"] == "fixed" and core["cycles"] == cycles and core["ranks"]["P"] == 64
    assert core["cycle_model"].endswith("run_core") and 0 < core["util_2d"] <= 1
    # the schedule-level simulation is reported next to it, and it is not the same number
    assert out["simulation"]["latency_cycles"] != cycles


@pytest.mark.parametrize("causal", [False, True])
def test_sim_reports_the_bf16_cores_cycles(causal):
    """4x4 bf16 at M = P = 32, E = F = 8 (at 64 the schedule's working set, which counts the output and
    the running state in the global buffer, exceeds the arch's 3 KiB: the simulator refuses it): the
    RTL's cycle formula, which the testbench asserts equal to the measured count."""
    from einloom.rtl.attention import compute_cycles
    from einloom.rtl.config import RtlConfig
    cfg = RtlConfig.from_yaml(str(ARCHS / "rtl-4x4-bf16.yaml"))
    core = _sim("causal-1pass" if causal else "fusemax-1pass", "rtl-4x4-bf16", "--seq-len", "32",
                "--ranks", "E=8,F=8")["generated_core"]
    assert core["core"] == "fixed" and core["cycles"] == compute_cycles(cfg, 32, 32, causal)
    assert core["cycles"] == (1419 if causal else 2449) and core["period"] == 37


def test_sim_reports_the_lane_cores_measured_cycles():
    out = _sim("alibi", "rtl-4x4-int8", "--ranks", "P=8,M=12,E=8,F=8")
    core = out["generated_core"]
    assert core["core"] == "lane" and core["cycles"] == 1401
    assert "alibi" in core["fixed_core_reason"] and "lane core runs" in core["why_they_differ"]


def test_instances_run_one_after_another():
    one = _sim("fusemax-1pass", "rtl-4x4-int8")["generated_core"]
    two = _sim("fusemax-1pass", "rtl-4x4-int8", "--batch", "2")["generated_core"]
    assert two["instances"] == 2 and two["cycles"] == 2 * one["cycles"] == 2 * 8267


def test_refused_cascade_says_why():
    core = _sim("lightning", "rtl-4x4-int8")["generated_core"]
    assert core["core"] == "refused" and "cycles" not in core
    assert core["reason"] and core["fixed_core_reason"]


def test_table_labels_both_numbers_and_why():
    status, out, err = run_cli(["sim", "causal-1pass", "--arch", ARCHS / "rtl-8x8-int8.yaml", "--workload", SMALL])
    assert status == 0, err
    assert "generated fixed core (= RTL)  1,287" in out
    assert "schedule-level simulator" in out and "why they differ" in out and "period 33 cycles" in out


def test_no_rtl_section_no_core():
    status, out, err = run_cli(["sim", "fusemax-1pass", "--arch", "fusemax-cloud", "--workload", SMALL, "--json"])
    assert status == 0, err
    assert "generated_core" not in json.loads(out)


def test_lane_core_cycles_do_not_depend_on_rank_names(tmp_path):
    """A user's copy of sigmoid with its query/key ranks renamed (P -> N, M -> T) gets the same core and
    the same cycles at the same sizes (the cycles come from the plan's structure, not from names)."""
    import re
    text = (ROOT / "einsum" / "library" / "sigmoid.yaml").read_text()
    renamed = re.sub(r"\bname: sigmoid\b", "name: sigmoid-renamed", text)
    renamed = re.sub(r"\bP\b", "N", re.sub(r"\bM\b", "T", renamed))
    renamed = re.sub(r"\bp\b", "n", re.sub(r"\bm\b", "t", renamed))
    spec = tmp_path / "sigmoid-renamed.yaml"
    spec.write_text(renamed)
    want = _sim("sigmoid", "rtl-4x4-int8", "--ranks", "P=32,M=32")["generated_core"]
    got = _sim(str(spec), "rtl-4x4-int8", "--ranks", "N=32,T=32")["generated_core"]
    assert want["core"] == got["core"] == "lane"
    assert got["cycles"] == want["cycles"] and got["ranks"] == {"E": 16, "F": 16, "N": 32, "T": 32}


def test_lane_core_runs_once_per_kv_head(tmp_path):
    """GQA on the lane core (a programmable copy of the 4x4 int8 core: the generator builds the lane
    core there): one run per K/V head (J), the query groups folded into each run."""
    arch = tmp_path / "rtl-4x4-int8-programmable.yaml"
    arch.write_text((ARCHS / "rtl-4x4-int8.yaml").read_text().replace(
        "name: rtl-4x4-int8", "name: rtl-4x4-int8-programmable") + "  programmable: true\n")
    one = _sim("gqa", str(arch.with_suffix("")), "--ranks", "J=1,G=1")["generated_core"]
    two = _sim("gqa", str(arch.with_suffix("")), "--ranks", "J=2,G=1")["generated_core"]
    assert one["core"] == two["core"] == "lane"
    assert two["cycles"] == 2 * one["cycles"] and "2 runs (K/V heads)" in two["mask"]


@pytest.mark.parametrize("spec", ["linear", "linear-causal"])
def test_sim_asks_the_same_lane_compiler_as_einloom_rtl(spec):
    """Multi-stage (linear) and per-key state (linear-causal) cascades: the core einloom rtl builds
    (plan_stages), its cycles the sum over the stages' runs (the manifest's per-program figures)."""
    from einloom.cost_models import load_arch
    from einloom.einsum import load_cascade
    from einloom.rtl.lane_build import core_shape, generate_lane_core, plan_stages
    out = _sim(spec, "rtl-4x4-bf16", "--ranks", "P=8,M=12,E=8,F=8")["generated_core"]
    assert out["core"] == "lane", out.get("reason")
    arch = load_arch(str(ARCHS / "rtl-4x4-bf16.yaml"))
    plans = plan_stages(load_cascade(spec), arch, {"P": 8, "M": 12, "E": 8, "F": 8})
    design, _ = generate_lane_core(plans, arch, programmable=len(plans) > 1)
    per_program = [prog["expected"][0]["compute_cycles"] for prog in design.manifest["programs"]]
    assert len(per_program) == (2 if spec == "linear" else 1)
    assert out["cycles"] == sum(per_program)
    if spec == "linear-causal":      # the measured count (docs/lane-core.md; Verilator: 1,207 before the PE pipeline, 1,237 before the PE operand register)
        assert out["cycles"] == 1243


def test_aaren_gets_the_lane_core():
    """aaren (a per-key scan, rtl/lanes/scan.py) runs on the lane core; the fixed core still refuses it."""
    core = _sim("aaren", "rtl-4x4-int8")["generated_core"]
    assert core["core"] == "lane" and core["cycles"] > 0 and "aaren" in core["fixed_core_reason"]
