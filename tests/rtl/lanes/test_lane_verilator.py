"""The generated lane in Verilator, driven by cocotb: several variants (fixed-program lanes) and one
programmable build running two variants, bit-exact with the reference executor and cycle-exact with
the program's cycle formula."""
from __future__ import annotations

from pathlib import Path

import pytest

from einloom.rtl.lanes.generate import generate_lane
from einloom.rtl.lanes.tb import prepare
from einloom.rtl.tb.runner import build, run_tests

SPECS = Path(__file__).parent / "specs"


def _run(jobs, programmable: bool):
    programs = [prepare(j["spec"], j["sizes"], j["seed"])[0] for j in jobs]
    design = generate_lane(programs, programmable=programmable, top="lane_p" if programmable else "lane_f")
    build_dir = build(design.verilog, design.top, quiet=True)
    out = run_tests(build_dir, design.top, "einloom.rtl.lanes.cocotb_lane",
                    spec={"jobs": jobs, "programmable": programmable}, quiet=True)
    results = out["tests"]
    assert out["num_failed"] == 0, results.get("problems", out)[:5] if results else out
    assert results["problems"] == []
    for block in results["blocks"]:
        assert block["busy"] == block["predicted"]
    return results


@pytest.mark.slow
@pytest.mark.parametrize("spec,sizes", [
    ("fusemax-1pass", {"P": 4, "M": 9, "E": 4, "F": 3}),
    ("causal-1pass", {"P": 6, "M": 5, "E": 4, "F": 2}),
], ids=["fusemax-1pass", "causal-1pass"])
def test_fixed_lane_in_verilator(spec, sizes):
    jobs = [{"spec": spec, "sizes": sizes, "seed": 7, "load": False, "lanes": list(range(sizes["P"]))}]
    results = _run(jobs, programmable=False)
    assert len(results["blocks"]) == sizes["P"]


@pytest.mark.slow
def test_programmable_lane_in_verilator_runs_two_variants():
    sizes = {"P": 3, "M": 7, "E": 4, "F": 2}
    jobs = [{"spec": "fusemax-1pass", "sizes": sizes, "seed": 1, "load": False, "lanes": [0, 1, 2]},
            {"spec": "sliding-window", "sizes": sizes, "seed": 2, "load": True, "lanes": [0, 1, 2]},
            {"spec": str(SPECS / "alibi-lane.yaml"), "sizes": sizes, "seed": 3, "load": True, "lanes": [0, 1, 2]},
            {"spec": "fusemax-1pass", "sizes": sizes, "seed": 4, "load": True, "lanes": [0, 1, 2]}]
    results = _run(jobs, programmable=True)
    specs = [b["spec"] for b in results["blocks"]]
    assert len(set(specs)) == 3 and len(specs) == 12
