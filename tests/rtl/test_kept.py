"""rtl/kept.py: registered copies of a control strobe survive synthesis as their own flip-flops (the
target's script puts ``keep`` on the flip-flop of a kept wire, so Yosys's opt_merge leaves it alone),
and the core's per-column copies and the 1D PEs' delayed tags are kept apart in the ECP5 netlist."""
from __future__ import annotations

import pytest
from amaranth.hdl import Fragment, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.generate import to_verilog
from einloom.rtl.kept import KEEP, kept_copies, reset_region
from yosys_netlist import flop_nets, synth_netlist


class _Copies(wiring.Component):
    """Four registers of the same input, each driving its own output bit."""

    def __init__(self, keep: bool):
        self.keep = keep
        super().__init__({"a": In(1), "x": Out(4)})

    def elaborate(self, platform):
        m = Module()
        if self.keep:
            regs = kept_copies(m, self.a, 4, "copy")
        else:
            regs = [Signal(name=f"copy{i}") for i in range(4)]
            m.d.sync += [reg.eq(self.a) for reg in regs]
        m.d.comb += [self.x[i].eq(reg) for i, reg in enumerate(regs)]
        return m


@pytest.mark.parametrize("keep,flops", [(True, 4), (False, 1)])
def test_kept_copies_survive_synthesis(tmp_path, keep, flops):
    """Without keep Yosys merges the four identical flip-flops into one (the fan-out the copies are
    there to avoid); with it each copy stays its own flip-flop."""
    module = synth_netlist(tmp_path, to_verilog(_Copies(keep), "copies"), "copies")
    assert sum(cell["type"] == "TRELLIS_FF" for cell in module["cells"].values()) == flops
    assert KEEP == {"keep": 1}


@pytest.mark.slow
def test_core_column_copies_are_separate_flops_in_the_ecp5_netlist(tmp_path):
    """On a 2x2 core: column 1's copy of the SLNV strobe and 1D PE 0's SLNV tag delayed by one cycle
    have the same input; both are flip-flops of their own in the mapped netlist (merged, one of them
    drove the other column: the 8x8 core's critical path), as are the exp and rescale tags and the PEs' tags."""
    from einloom.rtl.config import RtlConfig
    from einloom.rtl.generate import generate
    from einloom.rtl.units.dsp import dsp_primitives
    from tests.rtl.rtl_archs import shaped
    path = tmp_path / "arch.yaml"
    path.write_text(shaped(2, 2, e=4, f=4, max_keys=8, max_queries=4, name="kept-2x2"))
    with dsp_primitives("ecp5"):
        design = generate(RtlConfig.from_yaml(path))
    module = synth_netlist(tmp_path, design.verilog, design.top_name)
    return _check_apart(flop_nets(module, "TRELLIS_FF"))


#: Pairs of registers with the same input in the 2x2 core (``ctl.``: the controller's reset region):
#: (column 1's copy, column 0's local tag),
#: (PE (0,0)'s tag beside its product, PE (0,1)'s input tag register, its ``tag_out`` port)
APART = [("ctl.col1_slnv", "ctl.vpe0.tag_slnv0"), ("ctl.col1_issue_sln", "ctl.vpe0.tag_sln0"), ("ctl.col1_out_mul_pre", "ctl.vpe0.out_mul_r"),
         ("ctl.col1_rd_update", "ctl.vpe0.tag_rd0"), ("ctl.array.mesh.pe_0_0.tag2", "ctl.array.mesh.pe_0_1.tag_out"),
         # the RNV ring's rotate enable, one flip-flop per group of words (registered from the same
         # column copy), and the LM compare's registered capture strobe beside column 1's capture copy
         ("ctl.vpe0.rnv_rot0", "ctl.vpe0.rnv_rot1"), ("ctl.col1_capture", "ctl.vpe0.capture_r"),
         # the QK buffer's kept shift / rotate enables beside column 1's copies of the early strobes
         ("ctl.col1_capture_pre", "ctl.vpe0.qk_cap0"), ("ctl.col1_issue_sln_pre", "ctl.vpe0.qk_rot0"),
         # the output words' shift enable (one group of words at F = 4) beside the output tag's register
         ("ctl.vpe0.out_mul0", "ctl.vpe0.out_mul_r"),
         # a PE's tag beside its product, one copy per 8 bits of its sums
         ("ctl.array.mesh.pe_0_0.tag_acc0", "ctl.array.mesh.pe_0_0.tag_acc1"),
         # the reset regions' flip-flops (rtl/kept.py reset_region): per column, per row, per PE
         ("ctl.col0_reset_rst", "ctl.col1_reset_rst"), ("ctl.row0_reset_rst", "ctl.row1_reset_rst"),
         ("ctl.array.mesh.pe_0_0_reset_rst", "ctl.array.mesh.pe_0_1_reset_rst")]


def _check_apart(nets: dict[str, frozenset]) -> None:
    for one, other in APART:
        assert one in nets and other in nets, (one, other)
        assert not nets[one] & nets[other], f"{one} and {other} are one flip-flop"


def test_reset_regions_exist_in_the_verilog_only():
    """Outside ``reset_regions`` (Amaranth's simulator) a region is the sync domain; ``to_verilog``
    builds it as a domain of its own whose reset is a kept register of the sync reset."""
    outside = _Region()
    Fragment.get(outside, None)
    assert outside.domain == "sync"
    inside = _Region()
    verilog = to_verilog(inside, "region")
    assert inside.domain == "region0"
    assert "region0_rst" in verilog and "(* keep" in verilog


class _Region(wiring.Component):
    """A register in a reset region (``domain``: the domain it got)."""

    def __init__(self):
        self.domain = None
        super().__init__({"a": In(1), "x": Out(1)})

    def elaborate(self, platform):
        m = Module()
        reg = Signal()
        self.domain = reset_region(m, "region0")
        m.d[self.domain] += reg.eq(self.a)
        m.d.comb += self.x.eq(reg)
        return m
