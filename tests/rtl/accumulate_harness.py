"""Fp32Accumulator of every latency (1..4) and the formats' ``accumulate_unit()`` side by side, so
one Verilator build serves all their tests.

Accumulator ``acc{L}`` appears as ports ``acc{L}_x``, ``acc{L}_first``, ``acc{L}_last``, ``acc{L}_sum``,
``acc{L}_done``; ``bf16_unit`` is ``Bf16Units(acc_latency=4).accumulate_unit()`` and ``int8_unit`` the
int8 preset's ``FixedUnits.accumulate_unit()``, with the same port suffixes.
"""
from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.float.accumulate import Fp32Accumulator
from einloom.rtl.units import units_for
from einloom.sim.formats.bf16 import Bf16Format
from einloom.sim.formats.fixed import FixedFormat, FixedParams

LATENCIES = (1, 2, 3, 4)
INT8 = FixedFormat(FixedParams(), head_dim=16)
UNITS = {"bf16_unit": units_for(Bf16Format(head_dim=16, acc_latency=4)), "int8_unit": units_for(INT8)}


def _units(inspect_only: bool = False):
    """(name, component) of every accumulator in the harness (``inspect_only``: for their widths and
    latencies, not to be elaborated)."""
    units = [(f"acc{lat}", Fp32Accumulator(latency=lat)) for lat in LATENCIES] + \
        [(name, u.accumulate_unit()) for name, u in UNITS.items()]
    if inspect_only:
        for _, unit in units:
            unit._MustUse__silence = True
    return units


def unit_named(name: str):
    """The accumulator ``name`` of the harness, for its widths and latencies."""
    return dict(_units(inspect_only=True))[name]


class AccumulateHarness(wiring.Component):
    def __init__(self):
        sig = {}
        for name, unit in _units(inspect_only=True):
            sig.update({f"{name}_x": In(len(unit.x)), f"{name}_first": In(1), f"{name}_last": In(1),
                        f"{name}_sum": Out(len(unit.sum)), f"{name}_done": Out(1)})
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        for name, unit in _units():
            m.submodules[name] = unit
            m.d.comb += [unit.x.eq(getattr(self, f"{name}_x")), unit.first.eq(getattr(self, f"{name}_first")),
                         unit.last.eq(getattr(self, f"{name}_last")),
                         getattr(self, f"{name}_sum").eq(unit.sum), getattr(self, f"{name}_done").eq(unit.done)]
        return m
