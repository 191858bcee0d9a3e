"""cocotb testbench of a generated lane (run by tests/rtl/lanes/test_lane_verilator.py).

The spec (env ``EINLOOM_TB_SPEC``) lists jobs ``{"spec", "sizes", "seed", "load", "lanes"}`` and
whether the lane is programmable; the testbench rebuilds the same programs and images, then per job
(loading the program through the load port when ``load``) runs the query blocks of ``lanes`` with
:class:`~einloom.rtl.lanes.tb.LaneDriver` and records every difference from the reference executor.
"""
from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from einloom.rtl.lanes.encode import LaneShape, encode
from einloom.rtl.lanes.lane import pack_image
from einloom.rtl.lanes.tb import CocotbPort, LaneDriver, check_block, prepare
from einloom.rtl.lanes.units import schedule_latency


@cocotb.test()
async def lane_jobs(dut):
    spec = json.loads(open(os.environ["EINLOOM_TB_SPEC"]).read())
    lat = schedule_latency()
    jobs = [(j, *prepare(j["spec"], j["sizes"], j["seed"])) for j in spec["jobs"]]
    shape = LaneShape.covering(*[encode(j[1], lat) for j in jobs])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    port = CocotbPort(dut)
    for name in ("start", "go", "buf_we") + (("load_en",) if spec["programmable"] else ()):
        port.set(name, 0)
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await port.tick()
    results = {"problems": [], "blocks": []}
    for job, program, products, run, arith in jobs:
        image = encode(program, lat, shape)
        driver = LaneDriver(port, image, products, arith)
        if job.get("load"):
            await driver.load(pack_image(image, shape))
        for p in job["lanes"]:
            res = await driver.run_block(p)
            results["problems"] += check_block(res, run, image, arith, products.tiles)
            results["blocks"].append({"spec": job["spec"], "lane": p, "busy": res.busy, "cycles": res.cycles,
                                      "predicted": image.cycles(products.tiles)})
    open(os.environ["EINLOOM_TB_RESULTS"], "w").write(json.dumps(results))
    assert not results["problems"], results["problems"][:5]
