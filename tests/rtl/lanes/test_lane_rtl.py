"""The Amaranth lane against the reference executor (Amaranth's simulator): weights, outputs and busy
cycles bit for bit / cycle for cycle, several variants; one programmable lane running two variants;
what the RTL lane refuses.  (The Verilator/cocotb run of the same driver: test_lane_verilator.py.)"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator

from einloom.base.errors import SpecError
from einloom.rtl.lanes.encode import LaneShape, encode
from einloom.rtl.lanes.lane import Lane, pack_image
from einloom.rtl.lanes.tb import AmaranthPort, LaneDriver, check_block, prepare
from einloom.rtl.lanes.units import schedule_latency

ROOT = Path(__file__).resolve().parents[3]
SPECS = Path(__file__).parent / "specs"
LAT = schedule_latency()


def simulate(lane: Lane, jobs: list) -> list[str]:
    """Run ``jobs`` = [(image, products, run, arith, words or None, lanes)] one after another on ``lane``."""
    problems: list[str] = []
    sim = Simulator(lane)
    sim.add_clock(1e-8)

    async def bench(ctx):
        port = AmaranthPort(ctx, lane)
        for image, products, run, arith, words, lanes in jobs:
            driver = LaneDriver(port, image, products, arith)
            if words is not None:
                await driver.load(words)
            for p in lanes:
                res = await driver.run_block(p)
                problems.extend(check_block(res, run, image, arith, products.tiles))
    sim.add_testbench(bench)
    sim.run()
    return problems


CASES = [
    ("fusemax-1pass", {"P": 4, "M": 7, "E": 4, "F": 3}),
    ("causal-1pass", {"P": 6, "M": 5, "E": 4, "F": 2}),
    ("sliding-window", {"P": 4, "M": 9, "E": 4, "F": 2}),
    ("flash1-1pass", {"P": 3, "M": 6, "E": 4, "F": 2}),
    (str(SPECS / "alibi-lane.yaml"), {"P": 3, "M": 7, "E": 4, "F": 2}),
    (str(SPECS / "diff-lane.yaml"), {"P": 2, "M": 6, "E": 4, "F": 2}),
    (str(SPECS / "relu-lane.yaml"), {"P": 4, "M": 6, "E": 4, "F": 2}),
]


@pytest.mark.parametrize("spec,sizes", CASES, ids=[Path(s).stem for s, _ in CASES])
def test_lane_matches_executor(spec, sizes):
    program, products, run, arith = prepare(spec, sizes, seed=sizes["M"])
    image = encode(program, LAT)
    lanes = range(products.lanes)
    assert simulate(Lane(image), [(image, products, run, arith, None, lanes)]) == []


def test_programmable_lane_runs_two_variants():
    """One build (capacities covering both programs, units of both): program A from reset, then
    program B loaded through the load port, then A again; every block checked."""
    a = prepare("fusemax-1pass", {"P": 3, "M": 6, "E": 4, "F": 2}, seed=3)
    b = prepare("sliding-window", {"P": 3, "M": 6, "E": 4, "F": 2}, seed=4)
    shape = LaneShape.covering(encode(a[0], LAT), encode(b[0], LAT))
    ia, ib = encode(a[0], LAT, shape), encode(b[0], LAT, shape)
    lane = Lane(ia, shape, programmable=True)
    jobs = [(ia, a[1], a[2], a[3], None, range(3)),
            (ib, b[1], b[2], b[3], pack_image(ib, shape), range(3)),
            (ia, a[1], a[2], a[3], pack_image(ia, shape), range(3))]
    assert simulate(lane, jobs) == []
    assert ia.cycles(a[1].tiles) != ib.cycles(b[1].tiles)     # two different programs, really


def test_programmable_lane_checks_fit():
    a, _, _, _ = prepare("fusemax-1pass", {"P": 2, "M": 4, "E": 4, "F": 2})
    b, _, _, _ = prepare("sliding-window", {"P": 2, "M": 4, "E": 4, "F": 2})
    small = LaneShape.covering(encode(a, LAT))
    with pytest.raises(SpecError) as info:
        encode(b, LAT, small)
    assert "does not fit the generated lane" in str(info.value) and "coord" in str(info.value)


def test_a_wrong_lane_is_caught():
    """The check can fail: the driver feeding other scores than the executor's shows up as wrong weights."""
    program, products, run, arith = prepare("fusemax-1pass", {"P": 2, "M": 4, "E": 4, "F": 2}, seed=1)
    image = encode(program, LAT)
    data, valid = products.scores[0]
    data = data.copy()
    data[0, 0, 0] ^= np.uint32(1 << 16)
    products.scores[0] = (data, valid)
    problems = simulate(Lane(image), [(image, products, run, arith, None, [0])])
    assert any("weight" in p for p in problems)


def test_rtl_refuses_what_it_has_no_unit_for():
    sig, *_ = prepare("sigmoid", {"P": 2, "M": 4, "E": 4, "F": 2})
    with pytest.raises(SpecError) as info:
        encode(sig, LAT)
    assert "sigmoid" in str(info.value) or "continues across tiles" in str(info.value)


def test_units_are_the_programs():
    """A program without max or exp gets no max/exp unit in the lane."""
    program, *_ = prepare("fusemax-1pass", {"P": 2, "M": 4, "E": 4, "F": 2})
    image = encode(program, LAT)
    assert set(image.units) == {"add", "div", "exp", "max", "mul", "select"}
    shape = LaneShape.covering(image)
    lean = LaneShape(**{**shape.__dict__, "units": tuple(u for u in shape.units if u != "exp")})
    with pytest.raises(SpecError):
        encode(program, LAT, lean)


# ---- fixed-point lanes: (code, f) registers, rtl/lanes/fixed_units.py, the int8 / int16 presets -------------
FIXED_LAT = schedule_latency(fixed=True)
FIXED_CASES = [("fusemax-1pass", "int8", False), (str(SPECS / "alibi-lane.yaml"), "int16", False),
               (str(SPECS / "diff-lane.yaml"), "int8", False), ("causal-1pass", "int8", True),
               ("sliding-window", "int16", True), ("flash1-1pass", "int8", True)]


def _fixed(preset: str) -> dict:
    return {"kind": "fixed", "preset": preset}


@pytest.mark.parametrize("spec,preset", [pytest.param(s, p, marks=[pytest.mark.slow] if slow else [],
                                                      id=f"{Path(s).stem}-{p}") for s, p, slow in FIXED_CASES])
def test_fixed_point_lane_matches_executor(spec, preset):
    """Weights, outputs (the format's output codes) and busy cycles of every block, bit and cycle exact."""
    program, products, run, arith = prepare(spec, {"P": 4, "M": 7, "E": 4, "F": 3}, seed=7,
                                            number_format=_fixed(preset))
    image = encode(program, FIXED_LAT, fixed=arith)
    lane = Lane(image)
    assert lane.width == 72 and image.fixed is arith
    assert simulate(lane, [(image, products, run, arith, None, range(products.lanes))]) == []
    assert any(int(v.max()) != 0 for v in run.per_lane.values())       # not an all-zero comparison


def test_a_wrong_fixed_point_lane_is_caught():
    program, products, run, arith = prepare("fusemax-1pass", {"P": 2, "M": 4, "E": 4, "F": 2}, seed=1,
                                            number_format=_fixed("int8"))
    image = encode(program, FIXED_LAT, fixed=arith)
    data, valid = products.scores[0]
    data = data.copy()
    data["c"][0, 0, 0] += 16                                     # one score one unit larger
    products.scores[0] = (data, valid)
    problems = simulate(Lane(image), [(image, products, run, arith, None, [0])])
    assert any("weight" in p for p in problems)


def test_fixed_point_lane_refuses_an_operator_without_a_fixed_unit(monkeypatch):
    """An operator with a bf16 unit only (here sigmoid with its fixed-point unit unregistered): a
    fixed-point lane refuses it naming the unit; with the fixed unit registered it encodes."""
    from einloom.rtl.lanes import units
    program, _, _, arith = prepare("sigmoid", {"P": 2, "M": 4, "E": 4, "F": 2}, number_format=_fixed("int8"))
    encode(program, FIXED_LAT, fixed=arith, carry_in_array=True)  # the fixed-point sigmoid unit
    monkeypatch.delitem(units.FIXED_FN_UNITS, "sigmoid")
    with pytest.raises(SpecError, match="fn:sigmoid"):
        encode(program, FIXED_LAT, fixed=arith, carry_in_array=True)
    encode(program, LAT, carry_in_array=True)                     # the bf16 lane has it
