"""Drive the lane core (``rtl/lane_core.py``) and check it against the golden interpreter.

:func:`drive` is simulator-agnostic (the port adapters of :mod:`einloom.rtl.lanes.tb`): it loads a
program through the load port (programmable builds), the operand memories, starts the run, takes the
output beats with random backpressure and returns them with the measured cycles.  :func:`check`
compares the beats with ``run_in_format`` of the whole cascade (:func:`~einloom.rtl.lane_build.core_operands`)
bit for bit.  The cocotb test :func:`lane_core_jobs` runs the jobs of ``EINLOOM_TB_SPEC``: each job
names a spec, sizes, seed, backpressure and whether to load its program first.
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from einloom.rtl.lanes.tb import write_words


async def load_program(port: Any, words: dict[str, list[int]], table: list[int]) -> None:
    """Write a lane program (bundles, sections, constants) and the core's table through ``prog_*``."""
    await write_words(port, "prog", "target",
                      ((0, words["bundles"]), (1, words["sections"]), (2, words["constants"]), (3, table)))


async def drive(port: Any, shape: Any, data: Any, *, backpressure: float = 0.0, seed: int = 0,
                limit: int = 2_000_000) -> dict[str, Any]:
    """Load ``data`` (a :class:`~einloom.rtl.lane_build.CoreRunData`), run, collect the beats."""
    rng = np.random.default_rng(seed)
    await write_words(port, "load", "mem",
                      ((idx, data.words.get(name, [])) for idx, (name, _d, _l) in enumerate(shape.memories())),
                      settle=False)
    port.set("num_keys", data.num_keys)
    port.set("num_queries", data.num_queries)
    port.set("blocks", data.blocks)
    port.set("tiles", data.tiles)
    port.set("start", 1)
    await port.tick()
    port.set("start", 0)
    beats, stalls = [], 0
    width = shape.out_bits
    for _ in range(limit):
        if port.get("done"):
            await port.tick()
            return {"beats": beats, "cycles": port.get("cycles"), "busy_2d": port.get("busy_2d"),
                    "stalls": stalls}
        valid = port.get("out_valid")
        ready = int(rng.random() >= backpressure)
        port.set("out_ready", ready)
        if valid and ready:
            word, lv = port.get("out_data"), port.get("out_lane_valid")
            beats.append((port.get("out_block"), port.get("out_tag"), port.get("out_index"),
                          [(word >> (width * c)) & ((1 << width) - 1) for c in range(shape.cols)],
                          [(lv >> c) & 1 for c in range(shape.cols)]))
        stalls += int(valid and not ready)
        await port.tick()
    raise RuntimeError(f"the lane core did not finish in {limit} cycles")


def check(result: dict[str, Any], shape: Any, data: Any, outputs: list[str]) -> list[str]:
    """Differences between the core's beats and the golden outputs (empty when bit-exact)."""
    problems = []
    got = {name: np.full(data.golden[name].shape, -1, np.int64) for name in outputs}
    gotv = {name: np.zeros(data.golden[name].shape, bool) for name in outputs}
    for blk, tag, f, vals, lv in result["beats"]:
        name = outputs[tag]
        for c in range(shape.cols):
            q = blk * shape.cols + c
            if q < data.num_queries:
                got[name][f, q], gotv[name][f, q] = vals[c], bool(lv[c])
    for name in outputs:
        want, wv = data.golden[name], data.valid[name]
        bad = (gotv[name] != wv) | (wv & (got[name] != want))
        for f, q in zip(*np.nonzero(bad)):
            problems.append(f"{name}[{f}, q={q}]: {got[name][f, q]:#06x}/{int(gotv[name][f, q])}, "
                            f"golden {int(want[f, q]):#06x}/{int(wv[f, q])}")
    return problems


def simulate(spec: str, arch: Any, sizes: dict[str, int], *, backpressure: float = 0.0, seed: int = 3
             ) -> tuple[dict[str, Any], list[str], dict[str, int], Any, Any]:
    """Run the lane core of ``spec`` (a fixed program) in Amaranth's simulator on random inputs:
    ``(result, problems, cycle model, run data, plan)``."""
    from amaranth.sim import Simulator

    from einloom.einsum import load_cascade
    from einloom.rtl.lane_build import core_operands, core_shape, plan_lanes, random_inputs, timing_of
    from einloom.rtl.lane_core import LaneCore
    from einloom.rtl.lanes.tb import AmaranthPort
    from einloom.sim.rtl_core import lane_core_cycles
    plan = plan_lanes(load_cascade(spec), arch, sizes)
    shape = core_shape(arch, [plan])
    data = core_operands(plan, shape, random_inputs(plan, seed))
    core = LaneCore(shape, [plan.image])
    sim = Simulator(core)
    sim.add_clock(1e-8)
    out: dict[str, Any] = {}

    async def bench(ctx):
        out["r"] = await drive(AmaranthPort(ctx, core), shape, data, backpressure=backpressure, seed=seed)
    sim.add_testbench(bench)
    sim.run()
    model = lane_core_cycles(timing_of(plan, shape), data.num_queries, data.num_keys)
    return out["r"], check(out["r"], shape, data, list(plan.image.outputs)), model, data, plan


def simulate_programmable(specs: list[str], arch: Any, sizes: dict[str, int], *, seed: int = 3
                          ) -> list[tuple[str, dict[str, Any], list[str], dict[str, int]]]:
    """One programmable build for ``specs`` (same R, F, E) in Amaranth's simulator: the first program
    runs from reset, then each of the others, then the first again, loaded at run time through
    ``prog_*``; per run ``(spec, result, problems, cycle model)``."""
    from amaranth.sim import Simulator

    from einloom.einsum import load_cascade
    from einloom.rtl.lane_build import (core_operands, core_shape, covering_images, plan_lanes, random_inputs,
                                        timing_of)
    from einloom.rtl.lane_core import CoreProgram, LaneCore
    from einloom.rtl.lanes.lane import pack_image
    from einloom.rtl.lanes.tb import AmaranthPort
    from einloom.sim.rtl_core import lane_core_cycles
    plans = [plan_lanes(load_cascade(s), arch, sizes) for s in specs]
    shape = core_shape(arch, plans)
    lshape, images = covering_images(plans, True)
    for plan, image in zip(plans, images):
        plan.image = image
    core = LaneCore(shape, images, programmable=True)
    order = list(range(len(plans))) + [0]
    runs: list[tuple[str, dict[str, Any], list[str], dict[str, int]]] = []
    sim = Simulator(core)
    sim.add_clock(1e-8)

    async def bench(ctx):
        port = AmaranthPort(ctx, core)
        for n, k in enumerate(order):
            plan = plans[k]
            if n > 0:
                await load_program(port, pack_image(plan.image, lshape), CoreProgram.of(plan.image).table(shape))
            data = core_operands(plan, shape, random_inputs(plan, seed + n))
            res = await drive(port, shape, data, seed=seed + n)
            model = lane_core_cycles(timing_of(plan, shape), data.num_queries, data.num_keys)
            runs.append((specs[k], res, check(res, shape, data, list(plan.image.outputs)), model))
    sim.add_testbench(bench)
    sim.run()
    return runs


def _jobs_from_env() -> tuple[dict, list]:
    with open(os.environ["EINLOOM_TB_SPEC"]) as f:
        spec = json.loads(f.read())
    return spec, spec["jobs"]


try:
    import cocotb
except ImportError:     # the driver is usable without cocotb (Amaranth simulator)
    cocotb = None

if cocotb is not None:
    @cocotb.test()
    async def lane_core_jobs(dut):
        """Run every job of the spec on one build; write per-job results."""
        from cocotb.clock import Clock
        from cocotb.triggers import RisingEdge

        from einloom.cost_models import load_arch
        from einloom.einsum import load_cascade
        from einloom.rtl.lane_build import (core_operands, core_shape, covering_images, plan_lanes, random_inputs,
                                            timing_of)
        from einloom.rtl.lane_core import CoreProgram
        from einloom.rtl.lanes.lane import pack_image
        from einloom.rtl.lanes.tb import CocotbPort
        from einloom.sim.rtl_core import lane_core_cycles
        spec, jobs = _jobs_from_env()
        arch = load_arch(spec["arch"])
        plans = [plan_lanes(load_cascade(b["spec"]), arch, b["sizes"]) for b in spec["build"]]
        shape = core_shape(arch, plans)
        lshape, _ = covering_images(plans, spec["programmable"])
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        port = CocotbPort(dut)
        for name in ("start", "load_en", "out_ready") + (("prog_en",) if spec["programmable"] else ()):
            port.set(name, 0)
        dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        await port.tick()
        results = {"jobs": []}
        for job in jobs:
            plan = plan_lanes(load_cascade(job["spec"]), arch, job["sizes"])
            if spec["programmable"]:          # the image for the build's lane capacities
                plan.image = plan.encode(lshape)
            if job.get("load"):
                await load_program(port, pack_image(plan.image, lshape), CoreProgram.of(plan.image).table(shape))
            data = core_operands(plan, shape, random_inputs(plan, job["seed"]))
            res = await drive(port, shape, data, backpressure=job.get("backpressure", 0.0), seed=job["seed"])
            problems = check(res, shape, data, list(plan.image.outputs))
            model = lane_core_cycles(timing_of(plan, shape), data.num_queries, data.num_keys)
            n_out = sum(int(np.asarray(v).sum()) for v in data.valid.values())
            results["jobs"].append({"name": job["name"], "spec": job["spec"], "P": data.num_queries,
                                    "M": data.num_keys, "cycles": res["cycles"],
                                    "expected_cycles": model["compute_cycles"], "busy_2d": res["busy_2d"],
                                    "expected_busy_2d": model["mac_cycles"], "stalls": res["stalls"],
                                    "outputs_checked": n_out, "problems": problems[:20],
                                    "passed": not problems and (res["stalls"] > 0 or
                                                                res["cycles"] == model["compute_cycles"])})
        with open(os.environ["EINLOOM_TB_RESULTS"], "w") as f:
            f.write(json.dumps(results))
        assert all(j["passed"] for j in results["jobs"]), [j for j in results["jobs"] if not j["passed"]][:2]
