"""The lane core's per-key state chains (``rtl/lanes/recurrence.py``): state registers in the 2D array.

For a value product that reads a per-key state (``CoreShape.states[i]`` = (update product j, has an
operand)), PE (k, c) computes in row k's multiply cycle of the value column (the value product's
systolic column, ``rtl/lane_core.py``: k cycles after the column's read, the operand word ``B``
delayed alike), combinationally along row k,

    s[k, c] = add(s[k, c-1], mul(u[k, c], B[c]))        (bf16 build: fp32_add, fp32_mul, FTZ)
    s[k, c] = add(s[k, c-1], u[k, c])                    (no operand: the state adds the lane value)

``s[k, -1]`` is the state register (chain i, e-tile, row k, value column f) the block starts from,
``u[k, c]`` lane c's weight k of the update product j kept in full precision (the golden ``mul`` reads
it unrounded), ``B[c]`` word (block, f) of the memory ``u<i>`` (the C lanes' input codes).  The chain's
MAC multiplies ``s[k, c]`` (bf16-rounded as the golden ``mac`` rounds an operand; fixed point: the
value itself, the golden ``mac`` is exact) by its weight; ``s[k, C-1]`` is written back, the state
the next block starts from.  In fixed point ``mul`` floors to ``max(fa, fb)`` and ``add`` aligns
(``FixedArith``), as the lanes' units do.

Limits: the row is one combinational chain of C multiply-adds in front of row k's product register
(Fmax falls with C; not measured); the state registers are flip-flops, (tiles x R x F) per state chain.
"""
from __future__ import annotations

from typing import Any

from amaranth.hdl import Array, Cat, Const, Mux, Signal, signed

from einloom.rtl.float.add import Fp32Add
from einloom.rtl.float.mul import Fp32Mul

FP32_ONE = 0x3F800000


class StateChains:
    """The state registers, update weights and row chains of ``shape.states`` (module docstring)."""

    def __init__(self, m: Any, shape: Any, *, lanes: list, ports: dict, rd_i: Any, rd_e: Any, tile: Any,
                 blk: Any, e_idx: Any, clear: Any, row_i: list, row_e: list, row_write: list, delays: Any):
        s = shape
        R, C, F, T = s.rows, s.cols, s.value_dim, max(1, s.state_tiles)
        self.shape, self.fixed = s, s.fixed
        VB = s.value_bits
        cfg = list(s.states) + [None] * (s.chains - len(s.states))
        idx = [i for i, c in enumerate(cfg) if c is not None]
        upd = sorted({c[0] for c in cfg if c is not None})
        uw = {j: [[Signal(VB, name=f"uw{j}_{k}_{c}") for c in range(C)] for k in range(R)] for j in upd}
        for c, lane in enumerate(lanes):
            for j in upd:
                for k in range(R):
                    with m.If(lane.weight_en & (lane.weight_tag == j) & (lane.weight_index == k)):
                        m.d.sync += uw[j][k][c].eq(lane.weight_data)
        regs = {i: [[[Signal(VB, name=f"st{i}_{t}_{k}_{f}") for f in range(F)] for k in range(R)] for t in range(T)]
                for i in idx}
        with m.If(clear):
            for i in idx:
                for t in range(T):
                    for k in range(R):
                        m.d.sync += [r.eq(self._zero()) for r in regs[i][t][k]]
        # row k works k cycles after the read (the value product's systolic column): (product, value
        # column, valid) of row k are row_i[k], row_e[k], row_write[k]; the operand word delayed alike
        self.is_state = [Array([Const(int(c is not None), 1) for c in cfg])[row_i[k]] for k in range(R)]
        has_ops = [Array([Const(int(bool(c and c[1])), 1) for c in cfg])[row_i[k]] for k in range(R)]
        for i in idx:
            if cfg[i][1]:
                m.d.comb += ports[f"u{i}"].addr.eq(blk * F + e_idx)
        udata = Array([ports[f"u{i}"].data if cfg[i] and cfg[i][1] else Const(0, C * 16)
                       for i in range(s.chains)])[rd_i]
        urow = delays(udata, R - 1, "urow")
        zero_t = Array([Array([Const(0, VB)] * F)] * T)
        self.next = []
        for k in range(R):
            ri, re = row_i[k], row_e[k]
            base = Array([Array([Array(regs[i][t][k]) for t in range(T)]) if i in regs else zero_t
                          for i in range(s.chains)])[ri][tile][re]
            prev, row = base, []
            for c in range(C):
                u = Array([uw[cfg[i][0]][k][c] if cfg[i] else Const(0, VB) for i in range(s.chains)])[ri]
                code = urow[k][c * 16:(c + 1) * 16]
                nxt = self._update(m, f"{k}_{c}", prev, u, code, has_ops[k])
                row.append(nxt)
                prev = nxt
            self.next.append(row)
            with m.If(row_write[k] & self.is_state[k]):
                for i in idx:
                    for t in range(T):
                        for f in range(F):
                            with m.If((ri == i) & (tile == t) & (re == f)):
                                m.d.sync += regs[i][t][k][f].eq(row[-1])

    def _zero(self) -> int:
        if self.fixed is None:
            return 0
        from einloom.rtl.lanes.fixed_units import pack_value
        return pack_value(0, 0)

    def _update(self, m: Any, tag: str, prev: Any, u: Any, code: Any, has_op: Any) -> Any:
        """``add(prev, mul(u, B))`` or ``add(prev, u)``, combinational, in the core's format."""
        if self.fixed is None:
            mul, add = Fp32Mul(latency=0), Fp32Add(latency=0)
            m.submodules[f"stmul_{tag}"], m.submodules[f"stadd_{tag}"] = mul, add
            m.d.comb += [mul.a.eq(u), mul.b.eq(Cat(Const(0, 16), code)),
                         add.a.eq(prev), add.b.eq(Mux(has_op, mul.result, u))]
            return add.result
        from einloom.rtl.lanes.fixed_units import CODE_BITS, F_BITS, fixed_add
        out = Signal(self.shape.value_bits, name=f"stnext_{tag}")
        term = Signal(self.shape.value_bits, name=f"stterm_{tag}")
        prod = _fixed_mul_code(m, tag, u, code, self.fixed.p.frac_bits)
        m.d.comb += term.eq(Mux(has_op, prod, u))
        c, f = fixed_add(m, prev, term, f"stadd_{tag}")
        m.d.comb += out.eq(Cat(c[:CODE_BITS], f[:F_BITS]))
        return out

    def operand(self, m: Any, k: int, c: int, vbits: Any) -> Any:
        """The chain's value operand at PE (k, c): the state for a state chain, else ``vbits``."""
        if self.fixed is not None:
            return Mux(self.is_state[k], self.next[k][c], vbits)
        from einloom.rtl.float.convert import Fp32ToBf16
        cv = Fp32ToBf16(latency=0)
        m.submodules[f"stbf16_{k}_{c}"] = cv
        m.d.comb += cv.a.eq(self.next[k][c])
        return Mux(self.is_state[k], cv.result, vbits)


def _fixed_mul_code(m: Any, tag: str, u: Any, code: Any, frac_bits: int) -> Any:
    """``FixedArith.mul(u, B)`` of a lane value ``u`` and an input code ``B`` (``frac_bits``): the exact
    product floored to ``max(fu, frac_bits)`` fraction bits; a sentinel times nonzero is a sentinel."""
    from einloom.rtl.lanes.fixed_units import CODE_BITS, F_BITS, NEG, POS, _fields, _is_inf
    cu, fu = _fields(m, u, f"stmu_{tag}")
    cb = code.as_signed()
    inf = _is_inf(cu)
    prod = Signal(signed(CODE_BITS + 17), name=f"stprod_{tag}")
    m.d.comb += prod.eq(cu * cb)
    f = Signal(F_BITS, name=f"stf_{tag}")
    drop = Signal(F_BITS, name=f"stdrop_{tag}")
    big = fu > frac_bits
    m.d.comb += [f.eq(Mux(big, fu, frac_bits)), drop.eq(Mux(big, frac_bits, fu))]
    c = Signal(signed(CODE_BITS), name=f"stc_{tag}")
    m.d.comb += c.eq(Mux(inf, Mux(cb == 0, 0, Mux(cu[-1] ^ cb[-1], NEG, POS)), prod >> drop))
    return Cat(c, f)
