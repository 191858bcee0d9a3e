"""Registered hard multipliers: an ECP5 ``MULT18X18D`` with its own registers, or a model of it.

``registered_mult(m, a, b, latency)`` returns ``a * b`` of the operands ``latency`` cycles earlier
(a new product every cycle, no enable, no reset).  What it builds depends on the *DSP target* in
force when the multiplier is constructed (:func:`dsp_primitives`):

With ``input_registers=False`` the operands go straight into the multiplier (for a caller whose
own fabric register sits in front of it) and the latency (1 or 2) is the output and pipeline
registers.

``"model"`` (the default: Amaranth simulation, Verilator, ``einloom verify``, Xilinx/iCE40 synthesis)
    plain Amaranth logic with the primitive's register placement: the operands registered
    (latency >= 1), for latency >= 3 a register behind the multiply (the DSP's pipeline register),
    for latency >= 2 the output register.  Yosys maps the multiply to a hard multiplier and the
    registers to fabric flip-flops.
``"ecp5"`` (``einloom synth --target ecp5``, ``benchmarks/unit_fmax.py``)
    an instantiated ``MULT18X18D`` (Yosys ECP5 cell library ``cells_bb.v``; Lattice TN1267, ECP5
    sysDSP Usage Guide) with ``REG_INPUTA_CLK`` / ``REG_INPUTB_CLK`` = ``CLK0`` (latency >= 1),
    ``REG_PIPELINE_CLK`` = ``CLK0`` (latency 3) and ``REG_OUTPUT_CLK`` = ``CLK0`` (latency >= 2), CE
    tied high, RST tied low, ``GSR`` disabled.  The registers sit inside the DSP block, so no route to
    or from a far DSP site lies between a flip-flop and the multiplier (the 4x4 int8 core's remaining
    long paths were FF -> route -> MULT18X18D -> route -> FF, 2.5-3 ns of routing on each side).

The two differ only inside this module: the generated Verilog for verification and the Verilog for
ECP5 synthesis are the same text except each multiplier's module body (behavioural registers and
``*`` versus the primitive instance).  Both have the same latency, and the primitive's product is the
two's complement product of its 18-bit operands (``SIGNEDA``/``SIGNEDB`` from the operands' shapes).

Limits: each operand at most 18 bits (signed) or 18 bits (unsigned); latency 1..3; one clock domain
(``sync``).  nextpnr times ``MULT18X18D`` by its input and output registers (timing classes
``REGS_INPUT`` / ``REGS_OUTPUT`` / ``REGS_ALL``); the pipeline register of latency 3 is not in its
timing model (the DSP's internal path is not analysed either way).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from amaranth.hdl import ClockSignal, Const, Instance, Module, Shape, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

#: What :class:`RegisteredMult` builds: the behavioural model or the ECP5 primitive.
DSP_TARGETS = ("model", "ecp5")
#: The operand width of the ECP5 hard multiplier.
DSP_WIDTH = 18
#: Latencies the wrapper supports (input registers; + output register; + pipeline register).
LATENCIES = (1, 2, 3)

_TARGET: ContextVar[str] = ContextVar("einloom_dsp_target", default="model")


@contextmanager
def dsp_primitives(target: str) -> Iterator[None]:
    """Within the block, :func:`registered_mult` builds multipliers for ``target`` (see the module
    docstring): wrap the generation of a design, e.g. ``with dsp_primitives("ecp5"): generate(cfg)``."""
    if target not in DSP_TARGETS:
        raise ValueError(f"DSP target must be one of {', '.join(DSP_TARGETS)}, not {target!r}")
    token = _TARGET.set(target)
    try:
        yield
    finally:
        _TARGET.reset(token)


def dsp_target() -> str:
    """The DSP target in force (``"model"`` outside :func:`dsp_primitives`)."""
    return _TARGET.get()


def dsp_target_for(fpga_target: str) -> str:
    """The DSP target that synthesis for ``fpga_target`` (``ecp5``, ``xilinx``, ``ice40``) uses."""
    return "ecp5" if fpga_target == "ecp5" else "model"


def product_shape(a: Shape, b: Shape) -> Shape:
    """The shape of Amaranth's ``a * b`` (a signed result when either operand is signed)."""
    return (Signal(a) * Signal(b)).shape()


class RegisteredMult(wiring.Component):
    """``y`` at cycle t + ``latency`` is ``a * b`` of cycle t (see the module docstring).

    Parameters
    ----------
    a_shape, b_shape : Shape
        operand shapes, at most 18 bits each.
    latency : int
        1, 2 or 3 register stages (inputs; inputs + output; inputs + pipeline + output).
    target : str, optional
        ``"model"`` or ``"ecp5"``; default: :func:`dsp_target` when constructed.
    """

    def __init__(self, a_shape: Shape, b_shape: Shape, latency: int, *, target: str | None = None,
                 input_registers: bool = True):
        a_shape, b_shape = Shape.cast(a_shape), Shape.cast(b_shape)
        for name, shape in (("a", a_shape), ("b", b_shape)):
            if shape.width > DSP_WIDTH:
                raise ValueError(f"registered_mult: operand {name} is {shape.width} bits; the hard multiplier "
                                 f"takes at most {DSP_WIDTH} (split the operand, as rtl/units/fixed.split_mult does)")
        if latency not in LATENCIES:
            raise ValueError(f"registered_mult: latency must be one of {LATENCIES}, not {latency}")
        self.target = dsp_target() if target is None else target
        if self.target not in DSP_TARGETS:
            raise ValueError(f"DSP target must be one of {', '.join(DSP_TARGETS)}, not {self.target!r}")
        if not input_registers and latency > 2:
            raise ValueError("registered_mult: without input registers the latency is 1 or 2")
        self.latency = latency
        #: False: the operands go straight into the multiplier (the caller's own registers in front
        #: of it); the latency is then the pipeline (latency 2) and output registers
        self.input_registers = input_registers
        super().__init__({"a": In(a_shape), "b": In(b_shape), "y": Out(product_shape(a_shape, b_shape))})

    def elaborate(self, platform) -> Module:
        return self._primitive() if self.target == "ecp5" else self._model()

    def _model(self) -> Module:
        m = Module()
        a, b = self.a, self.b
        if self.input_registers:
            a = Signal.like(self.a, name="a_reg", reset_less=True)
            b = Signal.like(self.b, name="b_reg", reset_less=True)
            m.d.sync += [a.eq(self.a), b.eq(self.b)]
        value: Value = a * b
        behind = self.latency - int(self.input_registers)     # pipeline and output registers
        for name in ("p_pipe", "p_out")[2 - behind:]:
            reg = Signal(self.y.shape(), name=name, reset_less=True)
            m.d.sync += reg.eq(value)
            value = reg
        m.d.comb += self.y.eq(value)
        return m

    def _primitive(self) -> Module:
        m = Module()
        w = DSP_WIDTH
        a_ext, b_ext = Signal(w, name="a_ext"), Signal(w, name="b_ext")
        m.d.comb += [a_ext.eq(self.a), b_ext.eq(self.b)]   # sign- or zero-extends by the operand's shape
        p = Signal(2 * w, name="p")
        reg = "CLK0"
        behind = self.latency - int(self.input_registers)     # pipeline and output registers
        inputs = reg if self.input_registers else "NONE"
        params = {
            "p_REG_INPUTA_CLK": inputs, "p_REG_INPUTB_CLK": inputs,
            "p_REG_PIPELINE_CLK": reg if behind >= 2 else "NONE",
            "p_REG_OUTPUT_CLK": reg if behind >= 1 else "NONE",
            "p_REG_INPUTC_CLK": "NONE", "p_GSR": "DISABLED", "p_RESETMODE": "SYNC",
            "p_CLK0_DIV": "ENABLED", "p_SOURCEB_MODE": "B_SHIFT",
        }
        ports: dict[str, Value] = {
            "i_SIGNEDA": Const(int(self.a.shape().signed), 1), "i_SIGNEDB": Const(int(self.b.shape().signed), 1),
            "i_SOURCEA": Const(0, 1), "i_SOURCEB": Const(0, 1),
            "i_CLK0": ClockSignal("sync"), "i_CE0": Const(1, 1), "i_RST0": Const(0, 1),
        }
        for i in range(w):
            ports[f"i_A{i}"] = a_ext[i]
            ports[f"i_B{i}"] = b_ext[i]
            ports[f"i_C{i}"] = Const(0, 1)
        for i in range(2 * w):
            ports[f"o_P{i}"] = p[i]
        m.submodules.mult18x18d = Instance("MULT18X18D", **params, **ports)
        m.d.comb += self.y.eq(p.as_signed() if self.y.shape().signed else p)
        return m


def registered_mult(m: Module, a: Value, b: Value, latency: int, name: str, *,
                    input_registers: bool = True) -> Value:
    """``a * b`` of ``latency`` cycles earlier, on a :class:`RegisteredMult` added to ``m`` as ``name``."""
    unit = RegisteredMult(Value.cast(a).shape(), Value.cast(b).shape(), latency,
                          input_registers=input_registers)
    m.submodules[name] = unit
    m.d.comb += [unit.a.eq(a), unit.b.eq(b)]
    return unit.y


__all__ = ["DSP_TARGETS", "DSP_WIDTH", "LATENCIES", "RegisteredMult", "dsp_primitives", "dsp_target",
           "dsp_target_for", "product_shape", "registered_mult"]
