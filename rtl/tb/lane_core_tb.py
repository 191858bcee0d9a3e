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


def collect(result: dict[str, Any], shape: Any, data: Any, outputs: list[str]
            ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The core's output codes and valid bits per output, shaped [beats, queries] as ``data.golden``."""
    dtype = object if shape.out_bits > 62 else np.int64          # a wide build's 72-bit words
    got = {name: np.full(data.golden[name].shape, -1, dtype) for name in outputs}
    gotv = {name: np.zeros(data.golden[name].shape, bool) for name in outputs}
    for blk, tag, f, vals, lv in result["beats"]:
        name = outputs[tag]
        for c in range(shape.cols):
            q = blk * shape.cols + c
            if q < data.num_queries:
                got[name][f, q], gotv[name][f, q] = vals[c], bool(lv[c])
    return got, gotv


def check(result: dict[str, Any], shape: Any, data: Any, outputs: list[str]) -> list[str]:
    """Differences between the core's beats and the golden outputs (empty when bit-exact)."""
    problems = []
    got, gotv = collect(result, shape, data, outputs)
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


def handed_codes(result: dict[str, Any], shape: Any, data: Any, plan: Any) -> dict[str, np.ndarray]:
    """A stage's output beats as input codes of the next stage (bf16, in each tensor's rank order):
    the core's bf16 output as it is, an fp32 output rounded as the golden ``mac`` rounds an operand."""
    return stage_codes([(result, data, {})], shape, plan)


def stage_codes(runs: list[tuple[dict[str, Any], Any, dict[str, int]]], shape: Any, plan: Any
                ) -> dict[str, np.ndarray]:
    """The output beats of all head runs of one stage (``(result, data, head)`` each) as whole tensors
    in each tensor's rank order: a looped head's run fills its index, the folded heads' queries are the
    query columns (query head first); codes as :func:`handed_codes` gives them."""
    from einloom.einsum.cascade import var_of
    from einloom.einsum.interpret import _align
    from einloom.sim.formats.arith.fp32 import fp32_to_bf16
    st = plan.program.structure
    vsize = {var_of(r): int(n) for r, n in plan.schedule.sizes.items()}
    looped = tuple(var_of(r) for r in plan.looped)
    qvars = tuple(var_of(r) for r in plan.folded) + (var_of(st.lane),)
    whole: dict[str, np.ndarray] = {}
    dims: dict[str, tuple[str, ...]] = {}
    for result, data, head in runs:
        got, _ = collect(result, shape, data, list(plan.image.outputs))
        for name, codes in got.items():
            have = tuple(var_of(r) for r in plan.cascade.tensors[name].ranks)
            rows = (var_of(st.value),) if var_of(st.value) in have else ()
            arr = codes if rows else codes[0]
            if shape.wide:
                arr = _from_wide(arr, name in shape.handed, shape.out_bits)
            elif not shape.bf16_output:
                arr = np.asarray(fp32_to_bf16(arr.astype(np.uint32))).astype(np.int64)
            mine = tuple(v for v in looped if v in have)
            arr = arr.reshape(tuple(vsize[v] for v in rows + qvars))
            if name not in whole:
                dims[name] = mine + rows + qvars
                whole[name] = np.zeros(tuple(vsize[v] for v in dims[name]), arr.dtype)
            whole[name][tuple(head[v] for v in mine)] = arr
    return {name: _align(arr, dims[name], tuple(var_of(r) for r in plan.cascade.tensors[name].ranks))
            for name, arr in whole.items()}


def _from_wide(words: np.ndarray, handed: bool, bits: int) -> np.ndarray:
    """A wide build's output words: a handed-over tensor's values (``FIXED_DTYPE``: the next stage's
    input, exact), another output's signed codes."""
    from einloom.rtl.lanes.fixed_units import unpack_value
    from einloom.sim.formats.arith.fixed import FIXED_DTYPE
    flat = [int(w) for w in np.asarray(words).ravel()]
    if handed:
        out = np.zeros(len(flat), FIXED_DTYPE)
        for i, w in enumerate(flat):
            out[i] = unpack_value(w)
        return out.reshape(np.shape(words))
    return np.array([w - (1 << bits) if w >> (bits - 1) else w for w in flat], np.int64).reshape(np.shape(words))


async def run_stages(port: Any, plans: list[Any], images: list[Any], lshape: Any, shape: Any,
                     inputs: dict[str, np.ndarray], *, backpressure: float = 0.0, seed: int = 0,
                     load_first: bool = False) -> list[dict[str, Any]]:
    """Run the stages one after the other on one programmable build: load each stage's program (the
    first from reset unless ``load_first``), its operands (the cascade's inputs and the previous stages'
    outputs), run once per head (the plan's looped heads), take the beats.  Per run: result, problems
    against the stage's golden, run data, plan, stage index and head."""
    from einloom.rtl.lane_build import core_operands
    from einloom.rtl.lane_core import CoreProgram
    from einloom.rtl.lanes.lane import pack_image
    have = dict(inputs)
    out = []
    for k, (plan, image) in enumerate(zip(plans, images)):
        plan.image = image
        if k or load_first:
            await load_program(port, pack_image(image, lshape), CoreProgram.of(image).table(shape))
        given = dict(have) if plan.recurrence is not None else {t: have[t] for t in plan.cascade.inputs}
        runs = []
        for h, head in enumerate(plan.head_runs()):
            data = core_operands(plan, shape, given, head)
            res = await drive(port, shape, data, backpressure=backpressure, seed=seed + k + h)
            problems = check(res, shape, data, list(image.outputs))
            out.append({"result": res, "problems": problems, "data": data, "plan": plan, "stage": k, "head": head})
            runs.append((res, data, head))
        if k + 1 < len(plans):          # the next stages read this one's outputs (every head run's)
            have.update(stage_codes(runs, shape, plan))
    return out


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over a job's runs (stages x heads): cycles measured and modelled, 2D busy, stalls,
    output elements of the last stage."""
    last = [r for r in runs if r["stage"] == runs[-1]["stage"]]
    # the keys: the attention stage's (the first with a score product; mla's prologue reduces E, not M)
    keys = next((r for r in runs if set(r["plan"].program.scores) - r["plan"].program.structure.direct), runs[0])
    return {"P": runs[-1]["data"].num_queries, "M": keys["data"].num_keys,
            "stages": len({r["stage"] for r in runs}), "runs": len(runs),
            "cycles": sum(r["result"]["cycles"] for r in runs),
            "expected_cycles": sum(r["model"]["compute_cycles"] for r in runs),
            "busy_2d": sum(r["result"]["busy_2d"] for r in runs),
            "expected_busy_2d": sum(r["model"]["mac_cycles"] for r in runs),
            "run_cycles": [r["result"]["cycles"] for r in runs],
            "stalls": sum(r["result"]["stalls"] for r in runs),
            "outputs_checked": sum(int(np.asarray(v).sum()) for r in last for v in r["data"].valid.values())}


def whole_inputs(cascade: Any, plans: list[Any], seed: int) -> dict[str, np.ndarray]:
    """Random input codes of the whole cascade in its number format (its first stage's sizes)."""
    from einloom.rtl.lane_build import LanePlan, random_inputs
    from dataclasses import replace
    p0 = plans[0]
    sizes = {r: n for p in reversed(plans) for r, n in p.schedule.sizes.items()}     # every stage's ranks
    return random_inputs(LanePlan(cascade, replace(p0.schedule, sizes=sizes), p0.program, p0.image, p0.sizes,
                                  arith=p0.arith), seed)


def finish_stages(cascade: Any, stages: list[dict[str, Any]], shape: Any, inputs: dict[str, np.ndarray]
                  ) -> list[str]:
    """Add each stage's cycle model; the problems of all stages, and for several stages the last stage's
    outputs against ``run_in_format`` of the whole cascade."""
    from einloom.rtl.lane_build import timing_of
    from einloom.sim.formats.interpret import run_in_format
    from einloom.sim.rtl_core import lane_core_cycles
    several = len({s["stage"] for s in stages}) > 1
    problems = [(f"stage {s['stage'] + 1} ({s['plan'].cascade.name}): " if several else "") +
                (f"head {s['head']}: " if s["head"] else "") + p for s in stages for p in s["problems"]]
    for s in stages:
        s["model"] = lane_core_cycles(timing_of(s["plan"], shape), s["data"].num_queries, s["data"].num_keys)
    if several:
        params = {k: v for s in stages for k, v in s["plan"].schedule.mapping.params.items()}   # the key tile
        whole = run_in_format(cascade, stages[-1]["plan"].arith, dict(inputs), params)
        last = [s for s in stages if s["stage"] == stages[-1]["stage"]]
        got = stage_codes([(s["result"], s["data"], s["head"]) for s in last], shape, last[0]["plan"])
        for name, codes in got.items():
            want = np.asarray(whole.codes[name])
            if name in cascade.outputs and not np.array_equal(codes, want):
                problems.append(f"{name}: {int((codes != want).sum())} elements differ from run_in_format of "
                                "the whole cascade")
    return problems


def simulate_stages(spec: Any, arch: Any, sizes: dict[str, int], *, backpressure: float = 0.0, seed: int = 3
                    ) -> tuple[list[dict[str, Any]], list[str]]:
    """Run a cascade on the lane core in Amaranth's simulator, random inputs, every stage (one
    programmable build for several) and every head: ``(runs, problems)``; each run has its result,
    problems, cycle model, run data, plan, stage and head; ``problems`` also compares the last stage's
    outputs with ``run_in_format`` of the whole cascade when there are several stages."""
    from amaranth.sim import Simulator

    from einloom.einsum import load_cascade
    from einloom.rtl.lane_build import core_shape, covering_images, plan_stages
    from einloom.rtl.lane_core import LaneCore
    from einloom.rtl.lanes.tb import AmaranthPort
    cascade = load_cascade(spec) if isinstance(spec, str) else spec
    plans = plan_stages(cascade, arch, sizes)
    shape = core_shape(arch, plans)
    programmable = len(plans) > 1
    lshape, images = covering_images(plans, programmable)
    inputs = whole_inputs(cascade, plans, seed)
    core = LaneCore(shape, images, programmable=programmable)
    sim = Simulator(core)
    sim.add_clock(1e-8)
    out: dict[str, Any] = {}

    async def bench(ctx):
        out["stages"] = await run_stages(AmaranthPort(ctx, core), plans, images, lshape, shape, inputs,
                                         backpressure=backpressure, seed=seed)
    sim.add_testbench(bench)
    sim.run()
    return out["stages"], finish_stages(cascade, out["stages"], shape, inputs)


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
        from einloom.rtl.lane_build import core_shape, covering_images, plan_stages
        from einloom.rtl.lanes.tb import CocotbPort
        spec, jobs = _jobs_from_env()
        arch = load_arch(spec["arch"])
        plans = [p for b in spec["build"] for p in plan_stages(load_cascade(b["spec"]), arch, b["sizes"])]
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
        loaded = plans[0].cascade.name           # the program the build runs from reset
        for job in jobs:
            cascade = load_cascade(job["spec"])
            jplans = plan_stages(cascade, arch, job["sizes"])
            images = [p.encode(lshape) if spec["programmable"]
                      else p.image for p in jplans]     # a programmable build: images for its lane capacities
            inputs = whole_inputs(cascade, jplans, job["seed"])
            stages = await run_stages(port, jplans, images, lshape, shape, inputs,
                                      backpressure=job.get("backpressure", 0.0), seed=job["seed"],
                                      load_first=bool(job.get("load")) or jplans[0].cascade.name != loaded)
            loaded = jplans[-1].cascade.name      # a job of several stages leaves its last program loaded
            problems = finish_stages(cascade, stages, shape, inputs)
            tot = summary(stages)
            results["jobs"].append({"name": job["name"], "spec": job["spec"], **tot, "problems": problems[:20],
                                    "passed": not problems and (tot["stalls"] > 0 or
                                                                tot["cycles"] == tot["expected_cycles"])})
        with open(os.environ["EINLOOM_TB_RESULTS"], "w") as f:
            f.write(json.dumps(results))
        assert all(j["passed"] for j in results["jobs"]), [j for j in results["jobs"] if not j["passed"]][:2]
