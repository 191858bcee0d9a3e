"""Registered copies of a control signal that synthesis keeps apart (no fan-out across the array).

A strobe that several places need is delayed by one register per column (or row, or pipeline stage),
so many of those registers have the same input: column c's copy delayed by one cycle is column c+1's
copy.  Yosys's ``opt_merge`` merges flip-flops with the same input and clock into one, and that one
then drives every place: the 8x8 int8 core's critical path was a 1D PE's SLNV tag driving another
1D PE's RNV register enables across the array (15.9 ns, 14.9 of it routing).

A register made by :func:`kept_register` carries Yosys's ``keep`` attribute on its wire (Amaranth
writes ``(* keep = 32'd1 *)``); the FPGA synthesis script (:func:`einloom.rtl.fpga.targets.Target.synth_script`,
``KEEP_FLOPS``) puts ``keep`` on the flip-flop that drives such a wire, and ``opt_merge`` merges no
cell that has it.  Every copy that must stay apart needs the attribute: of two mergeable flip-flops
of which one has ``keep``, ``opt_merge`` keeps that one and moves the other's loads onto it.
Simulation (Amaranth, Verilator) ignores the attribute.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

from amaranth.hdl import ClockDomain, ClockSignal, Module, ResetSignal, Signal, Value

#: The attribute a kept register's wire carries.
KEEP = {"keep": 1}


def kept_register(like: Signal, name: str, *, reset_less: bool | None = None) -> Signal:
    """A signal shaped like ``like``, named ``name``, that synthesis keeps as its own flip-flops
    (the caller registers it: ``m.d.sync += copy.eq(...)``); ``reset_less`` as ``like``'s unless given."""
    extra = {} if reset_less is None else {"reset_less": reset_less}
    return Signal.like(like, name=name, attrs=KEEP, **extra)


def kept_copies(m: Module, source, count: int, name: str, *, reset_less: bool | None = None,
                domain: str = "sync") -> list:
    """``count`` kept registers named ``{name}0`` .. ``{name}{count-1}``, each registered from ``source``
    in ``m``'s ``domain`` (one cycle of latency): one copy per group of loads, so no single flip-flop
    drives them all; ``reset_less`` as in :func:`kept_register`."""
    copies = [kept_register(source, f"{name}{g}", reset_less=reset_less) for g in range(count)]
    m.d[domain] += [c.eq(source) for c in copies]
    return copies


_REGIONS: ContextVar[bool] = ContextVar("einloom_reset_regions", default=False)


@contextmanager
def reset_regions() -> Iterator[None]:
    """Builds :func:`reset_region`'s domains for designs elaborated inside (``to_verilog`` does).

    Outside, a region is the sync domain itself: Amaranth's simulator runs a domain whose clock is
    assigned from ``sync`` a delta cycle late, so its registers would take the sync registers' new
    values (no register between them); Verilator and Yosys read the Verilog, where the region's clock
    is the same net.  The Amaranth-simulated core therefore has one reset; the Verilog (verified by
    Verilator, synthesized) has the regions."""
    token = _REGIONS.set(True)
    try:
        yield
    finally:
        _REGIONS.reset(token)


def regions_built() -> bool:
    """Whether :func:`reset_region` builds domains (inside :func:`reset_regions`)."""
    return _REGIONS.get()


def reset_region(m: Module, name: str, source: Value | None = None) -> str:
    """Declares in ``m`` a local clock domain ``name`` on ``m``'s sync clock whose reset is a kept
    flip-flop ``{name}_rst`` registered from ``source`` (default: the sync reset); returns the name,
    for ``DomainRenamer(name)`` or ``m.d[name]`` (``"sync"`` outside :func:`reset_regions`).

    One reset flip-flop driving every register of a large core is a net across the die (the 8x8 int8
    core's path at 61.63 MHz: the reset register -> 15.46 ns of routing -> a control flip-flop); a
    region's copy is placed near its loads.  Latency: the region enters and leaves reset one cycle
    after ``source`` (a region of a region: one more).
    """
    if not regions_built():
        return "sync"
    domain = ClockDomain(name, local=True)
    m.domains += domain
    rst = Signal(name=f"{name}_rst", attrs=KEEP, reset_less=True)
    m.d.sync += rst.eq(ResetSignal("sync") if source is None else source)
    m.d.comb += [ClockSignal(name).eq(ClockSignal("sync")), ResetSignal(name).eq(rst)]
    return name
