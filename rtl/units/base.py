"""What a number format must provide to the attention datapath (the RTL half of a number format).

The datapath (``ProcessingElement``, ``VectorPE``) is written once; every arithmetic operation it does
goes through a :class:`DatapathUnits` object built for the configured number format by
:func:`einloom.rtl.units.units_for`.  A format supplies:

* shapes of its codes: ``input_shape`` (Q/K/V elements), ``mult_shape`` (the 2D PE's second multiplier
  operand, a common shape for Q elements and probabilities), ``product_shape`` (the 2D PE's registered
  product), ``acc_shape`` (QK, psums, SLNV, RNV, RM),
  ``prob_shape`` (SLN, PRM), ``den_shape`` (SLD, RD), ``recip_shape``, ``output_shape``;
* combinational operators, called inside ``elaborate`` as ``units.op(m, ...)`` (they may add
  submodules to ``m``) and returning an Amaranth value;
* the 2D PE's accumulation as a pipelined component, ``accumulate_unit()``, with ``acc_latency``
  (cycles from a product to the partial sum it joins: 1 for fixed point, the fp32 adder's depth L
  for bf16, whose sums are then L interleaved partial sums in the golden model's order);
* four pipelined units with a fixed ``latency`` (cycles from inputs to outputs, a new operation every
  cycle, no stall): ``exp_unit()`` computing ``exp_diff(x, m)``, ``recip_unit()`` (one for the whole 1D
  array, shared by its columns), ``rescale_unit(kind)`` (the RD and RNV updates) and ``output_unit()``
  (``AV = RNV * recip``).

Each operation must be the RTL twin of the same-named primitive of the format's golden model
(:class:`einloom.sim.formats.base.NumberFormat`); the testbenches compare them bit for bit.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from amaranth.hdl import Module, Shape, Signal, Value
from amaranth.lib import wiring

from einloom.sim.formats.base import NumberFormat


class DatapathUnits(ABC):
    """Arithmetic of one number format, as Amaranth logic (see the module docstring)."""

    fmt: NumberFormat
    input_shape: Shape
    mult_shape: Shape
    product_shape: Shape
    acc_shape: Shape
    prob_shape: Shape
    den_shape: Shape
    recip_shape: Shape
    output_shape: Shape

    #: register stages in the 1D PE's max path (``sim.rtl_core.CoreParams.lm_reg``): 0 compares a drained
    #: score as it leaves the 2D array and LM against RM on the update; 1 registers the drained score (with
    #: its capture strobe and mask test) before the LM compare; 2 also registers the LM > RM compare
    #: before the RM update.  Each stage moves RM, SLN and PRM one cycle later.
    lm_register: int = 0

    @property
    def score_shape(self) -> Shape:
        """A shape that holds every QK score exactly (the 1D PE's LM, RM and their compares): the
        accumulator's by default; a fixed-point format narrows it to the dot product's own range."""
        return self.acc_shape

    # ---- 2D PE -------------------------------------------------------------------------------
    @abstractmethod
    def input_to_mult(self, m: Module, x: Value) -> Value:
        """A Q element as the multiplier's second operand."""

    @abstractmethod
    def prob_to_mult(self, m: Module, w: Value) -> Value:
        """A probability (SLN) as the multiplier's second operand."""

    @abstractmethod
    def product(self, m: Module, a: Value, b: Value) -> Value:
        """``a * b`` (input x mult) as a ``product_shape`` value, combinational (the PE registers it)."""

    #: cycles from the PE's operands to its registered product (:meth:`registered_product`)
    product_latency = 2
    #: the deepest multiply pipeline :meth:`registered_product` builds (None: :attr:`product_latency`
    #: only; a format whose product takes extra registers sets it above that, its shallowest)
    max_product_latency: int | None = None

    def product_latencies(self) -> range:
        """The 2D PE multiply depths the format builds: ``product_latency`` (the class's, its shallowest)
        to ``max_product_latency``."""
        low = type(self).product_latency
        return range(low, (self.max_product_latency or low) + 1)

    def with_product_latency(self, latency: int) -> "DatapathUnits":
        """These units with a 2D PE multiply of ``latency`` register stages (``product_latency`` ..
        ``max_product_latency``): a deeper pipeline puts more registers between the hard multiplier
        and the accumulate, for the long routes of a large array (each costs a cycle of the 2D
        pipeline, which the cycle model reads).  ``ValueError`` outside that range."""
        depths = self.product_latencies()
        if latency not in depths:
            span = f"{depths[0]}" if len(depths) == 1 else f"{depths[0]} to {depths[-1]}"
            raise ValueError(f"the {self.fmt.kind} PE's multiply is {span} cycles deep, not {latency}")
        if latency == self.product_latency:
            return self
        import copy
        out = copy.copy(self)
        out.product_latency = latency
        return out

    def registered_product(self, m: Module, a: Value, b: Value, name: str = "mult") -> Value:
        """The 2D PE's multiply, :attr:`product_latency` cycles deep: ``product(a, b)`` of the operands
        two cycles earlier.  Default: registered operands, :meth:`product`, a registered product; a
        format whose multiply fits a hard multiplier puts the registers into it
        (:func:`einloom.rtl.units.dsp.registered_mult`)."""
        a_reg = Signal(Value.cast(a).shape(), name=f"{name}_a", reset_less=True)
        b_reg = Signal(Value.cast(b).shape(), name=f"{name}_b", reset_less=True)
        prod = Signal(self.product_shape, name=f"{name}_p", reset_less=True)
        m.d.sync += [a_reg.eq(a), b_reg.eq(b), prod.eq(self.product(m, a_reg, b_reg))]
        return prod

    @abstractmethod
    def accumulate(self, m: Module, base: Value, prod: Value) -> Value:
        """``base + prod``, combinational: with :meth:`product` the PE's QK and SLNV (``column_mac``)
        step; the OS accumulation loops on it within one cycle."""

    #: cycles from a product entering :meth:`accumulate_unit` to the partial sum it joins (1: a
    #: single-cycle accumulate; L > 1: L interleaved partial sums, the golden model's ``dot`` order)
    acc_latency: int

    @abstractmethod
    def accumulate_unit(self) -> "wiring.Component":
        """The pipelined OS accumulation: a component with ports ``x`` (In product_shape), ``first``,
        ``last`` (In 1: the first and last product of a sum, which arrive on consecutive cycles),
        ``sum`` (Out acc_shape) and ``done`` (Out 1, ``drain_latency`` cycles after the ``last``
        product), and ``latency`` (= :attr:`acc_latency`) and ``drain_latency`` attributes; its sum is
        bit-exact with the format's ``dot`` (the order of :attr:`acc_latency` partial sums)."""

    def acc_adder(self) -> "wiring.Component":
        """The 2D PE's pipelined accumulate when :attr:`acc_latency` L > 1: an adder with ports ``a``,
        ``b`` (In acc_shape; ``b`` takes a product) and ``result`` (Out acc_shape, a register, L cycles
        after its inputs).  Only formats with L > 1 provide it."""
        raise NotImplementedError(f"{type(self).__name__} has a single-cycle accumulate (acc_latency 1)")

    def partial_sum(self) -> "wiring.Component":
        """The combine of the 2D PE's L interleaved partial sums when :attr:`acc_latency` L > 1: ports
        ``parts`` (In, L acc_shape values) and ``sum`` (Out acc_shape, ``latency`` cycles later), in the
        format's ``dot`` order.  Only formats with L > 1 provide it."""
        raise NotImplementedError(f"{type(self).__name__} has a single-cycle accumulate (acc_latency 1)")

    # ---- 1D PE -------------------------------------------------------------------------------
    @abstractmethod
    def greater(self, m: Module, a: Value, b: Value) -> Value:
        """1 when accumulator code ``a`` > ``b`` (the max unit's comparator)."""

    @abstractmethod
    def prob_add(self, m: Module, den: Value, prob: Value) -> Value:
        """``den + prob`` (SLD accumulation)."""


    exp_latency: int     #: latency of exp_unit() (known without building it)
    recip_latency: int   #: latency of recip_unit()
    output_latency: int  #: latency of output_unit()
    rescale_latency: int  #: latency of rescale_unit()

    @abstractmethod
    def exp_unit(self) -> "wiring.Component":
        """A pipelined component with ports ``x``, ``m`` (In acc_shape) and ``y`` (Out prob_shape), and a
        ``latency`` attribute: ``y`` at cycle t+latency is ``exp_diff(x, m)`` of cycle t."""

    @abstractmethod
    def recip_unit(self) -> "wiring.Component":
        """A pipelined component with ports ``x`` (In den_shape) and ``y`` (Out recip_shape), and a
        ``latency`` attribute: ``y`` at cycle t+latency is ``reciprocal(x)`` of cycle t."""

    @abstractmethod
    def rescale_unit(self, kind: str) -> "wiring.Component":
        """A pipelined component computing ``rescale_add(prm, old, addend) = prm * old + addend`` (RD with
        ``kind="den"``: den codes; RNV with ``kind="acc"``: acc codes), with ports ``prm`` (In
        prob_shape), ``old``, ``addend`` (In) and ``y`` (Out) and a ``latency`` attribute.  Optional
        port ``first`` (In 1): the unit rescales 0 instead of ``old`` (``y = addend``) when it is set,
        so the caller needs no select in front of the unit's multiplier."""

    @abstractmethod
    def output_unit(self) -> "wiring.Component":
        """A pipelined component with ports ``rnv`` (In acc_shape), ``recip`` (In recip_shape) and ``y``
        (Out output_shape), and a ``latency`` attribute: ``y`` at cycle t+latency is
        ``output(rnv, recip)`` of cycle t."""
