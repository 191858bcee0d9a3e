"""The event simulator on an array with concurrent units (``array_1d.concurrent_units``, the generated
core's lanes): each 1D Einsum's op occupies its busiest unit, hand-offs carry the pipeline depths.

Against the core's cycles (``sim/rtl_core``, = RTL; 8,264 for fusemax-1pass on 4x4 int8 at M = P = 64):
with the flag the simulator is within 10 %, without it (each Einsum after the other on one 1D unit) it
is 1.56x.
"""
from __future__ import annotations

from pathlib import Path

from einloom.commands.schedule_args import rtl_core_mapping
from einloom.cost_models.arch import load_arch
from einloom.cost_models.workload import load_workload
from einloom.einsum import load_cascade
from einloom.mapper.lower import lower
from einloom.sim.simulator import SimOptions, simulate

ROOT = Path(__file__).resolve().parents[2]
ARCH = ROOT / "examples" / "archs" / "rtl-4x4-int8.yaml"
SMALL = ROOT / "examples" / "workloads" / "rtl-small.yaml"


def _sim(arch_path):
    arch, cascade = load_arch(arch_path), load_cascade("fusemax-1pass")
    schedule = lower(cascade, rtl_core_mapping(cascade, arch, required=True), arch, load_workload(str(SMALL)))
    return simulate(schedule, SimOptions())


def test_lanes_units_run_concurrently_in_the_simulator(tmp_path):
    result = _sim(ARCH)
    assert 8264 <= result.latency_cycles <= 1.1 * 8264
    units = {t[0] for t in result.trace}
    assert {"2d", "dram", "1d.max", "1d.exp", "1d.add", "1d.mul"} <= units and "1d" not in units
    assert 0 < result.utilization["1d"] <= 1 and result.busy["1d"] <= result.latency_cycles
    lines = ARCH.read_text().splitlines(keepends=True)
    i = next(k for k, line in enumerate(lines) if line.startswith("  concurrent_units: true"))
    plain = tmp_path / "plain.yaml"
    plain.write_text("".join(lines[:i] + lines[i + 2:]))
    serial = _sim(plain)
    assert serial.latency_cycles > 1.5 * 8264 and {t[0] for t in serial.trace} == {"2d", "1d", "dram"}
