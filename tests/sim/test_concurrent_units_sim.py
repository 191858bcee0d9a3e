"""The event simulator on an array with concurrent units (``array_1d.concurrent_units``, the generated
core's lanes): each 1D Einsum's op occupies its busiest unit, hand-offs carry the pipeline depths.

Against the core's cycles (``sim/rtl_core.run_core``, = RTL; 8,265 at 6be32bb for fusemax-1pass on 4x4 int8 at M = P = 64):
with the flag the simulator is within 10 %, without it (each Einsum after the other on one 1D unit) it
is 1.56x.
"""
from __future__ import annotations

from pathlib import Path

import pytest

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


def _core_cycles() -> int:
    from einloom.rtl.attention import core_params
    from einloom.rtl.config import RtlConfig
    from einloom.sim.rtl_core import run_core
    return run_core(core_params(RtlConfig.from_yaml(str(ARCH))), 64, 64).cycles


def test_lanes_units_run_concurrently_in_the_simulator(tmp_path):
    result = _sim(ARCH)
    core = _core_cycles()
    assert core <= result.latency_cycles <= 1.1 * core
    units = {t[0] for t in result.trace}
    assert {"2d", "dram", "1d.max", "1d.exp", "1d.add", "1d.mul"} <= units and "1d" not in units
    assert 0 < result.utilization["1d"] <= 1 and result.busy["1d"] <= result.latency_cycles
    lines = ARCH.read_text().splitlines(keepends=True)
    i = next(k for k, line in enumerate(lines) if line.startswith("  concurrent_units: true"))
    plain = tmp_path / "plain.yaml"
    plain.write_text("".join(lines[:i] + lines[i + 2:]))
    serial = _sim(plain)
    assert serial.latency_cycles > 1.5 * core and {t[0] for t in serial.trace} == {"2d", "1d", "dram"}


def test_the_timeline_reads_the_busiest_unit_not_their_sum():
    """The per-bin utilization of an array with concurrent units is its busiest unit's (each at most 1),
    not the units' intervals added up (which read 244 % on this run before)."""
    t = _sim(ARCH).timeline
    assert max(t["util_1d"]) <= 1.0 + 1e-9 and max(t["util_2d"]) <= 1.0 + 1e-9
    assert max(t["util_1d"]) > 0.5


SEQUENTIAL = """name: rtl-core-sequential
cascade: fusemax-1pass
params: {M0: 4}
binding:
  2d: [QK, SLNV]
  1d: [LM, RM, SLN, PRM, SPD, SLD, RD, SPNV, RNV, AV]
spatial:
  2d: {rows: [M0], cols: [P]}
  1d: {lanes: [P]}
tiling:
  M0: {spatial: 4}
  P: {spatial: 4}
loop_order:
  GLB: [P, M1]
  PE: [E, F]
groups:
- {einsums: all, pipeline: sequential}
"""


def test_concurrent_units_overlap_only_in_an_interleaved_group(tmp_path):
    """The mapper overlaps an array's units only inside an ``interleave`` group; the simulator follows
    (a sequential group's 1D Einsums run one after another on the array, the flag on or off)."""
    from einloom.mapper.mapping import load_mapping
    path = tmp_path / "seq.yaml"
    path.write_text(SEQUENTIAL)
    lines = ARCH.read_text().splitlines(keepends=True)
    i = next(k for k, line in enumerate(lines) if line.startswith("  concurrent_units: true"))
    plain = tmp_path / "plain.yaml"
    plain.write_text("".join(lines[:i] + lines[i + 2:]))
    cascade = load_cascade("fusemax-1pass")
    got = {}
    for name, arch_path in (("flag", ARCH), ("plain", plain)):
        arch = load_arch(arch_path)
        schedule = lower(cascade, load_mapping(str(path)), arch, load_workload(str(SMALL)))
        result = simulate(schedule, SimOptions())
        got[name] = result.latency_cycles
        assert {t[0] for t in result.trace} <= {"2d", "1d", "dram"}
    assert got["flag"] == pytest.approx(got["plain"], rel=0.02)
