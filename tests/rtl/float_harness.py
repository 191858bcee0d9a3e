"""A test harness holding every float unit side by side, so one Verilator build serves all their tests.

Unit ``name`` appears as ports ``{name}_a``, ``{name}_b`` (two-input units) and ``{name}_result``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.float import Bf16Mul, Bf16ToFp32, Fp32Add, Fp32Exp, Fp32Max, Fp32Mul, Fp32Recip, Fp32ToBf16
from einloom.rtl.float.bf16 import Bf16ExpDiff
from einloom.sim.formats import bf16 as B

SCALE_BITS = int(B.fp32_bits(1 / np.sqrt(8)))       # exp_diff as configured for head_dim 8


@dataclass(frozen=True)
class UnitCase:
    """One unit under test: how to build it, its port widths and its golden model."""

    make: Callable[[], wiring.Component]
    in_bits: int
    out_bits: int
    inputs: int
    golden: Callable[..., np.ndarray]
    ports: tuple[str, ...] = ("a", "b", "result")


def _exp_diff_golden(x, m):
    fmt = B.Bf16Format(head_dim=8)
    return fmt.exp_diff(x, m)


UNITS: dict[str, UnitCase] = {
    "bf16_to_fp32": UnitCase(Bf16ToFp32, 16, 32, 1, B.bf16_to_fp32),
    "fp32_to_bf16": UnitCase(Fp32ToBf16, 32, 16, 1, B.fp32_to_bf16),
    "bf16_mul": UnitCase(Bf16Mul, 16, 32, 2, B.bf16_mul),
    "fp32_mul": UnitCase(Fp32Mul, 32, 32, 2, B.fp32_mul),
    "fp32_add": UnitCase(Fp32Add, 32, 32, 2, B.fp32_add),
    "fp32_sub": UnitCase(lambda: Fp32Add(subtract=True), 32, 32, 2, B.fp32_sub),
    "fp32_max": UnitCase(Fp32Max, 32, 32, 2, B.fp32_max),
    "fp32_exp": UnitCase(Fp32Exp, 32, 32, 1, B.fp32_exp),
    "fp32_recip": UnitCase(Fp32Recip, 32, 32, 1, B.fp32_recip),
    "exp_diff": UnitCase(lambda: Bf16ExpDiff(SCALE_BITS), 32, 32, 2, _exp_diff_golden, ("x", "m", "y")),
}


def latencies() -> dict[str, int]:
    return {name: case.make().latency for name, case in UNITS.items()}


class FloatUnitsHarness(wiring.Component):
    """Every unit of :data:`UNITS`, unconnected to each other, with prefixed ports."""

    def __init__(self):
        sig = {}
        for name, c in UNITS.items():
            sig[f"{name}_a"] = In(c.in_bits)
            if c.inputs == 2:
                sig[f"{name}_b"] = In(c.in_bits)
            sig[f"{name}_result"] = Out(c.out_bits)
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        for name, c in UNITS.items():
            unit = c.make()
            m.submodules[name] = unit
            pa, pb, pr = c.ports
            m.d.comb += getattr(unit, pa).eq(getattr(self, f"{name}_a"))
            if c.inputs == 2:
                m.d.comb += getattr(unit, pb).eq(getattr(self, f"{name}_b"))
            m.d.comb += getattr(self, f"{name}_result").eq(getattr(unit, pr))
        return m
