"""The simulator configured as the generated attention core: an RTL-shaped phase model.

The generated core (``rtl/``, documented in rtl/README.md) runs 1-pass attention on an R x C 2D array
(rows = keys of a tile, columns = queries of a block) and a C-wide 1D array, with fixed-length phases
and no overlap between them.  This module executes that schedule on the simulator's event engine
(:class:`~einloom.sim.engine.Engine`): one op per phase, on the unit that runs it, each depending on the
phase before it, per block of C queries and per key tile of R keys::

    BLOCK  (ctl)  start a block                                     1
    TILE   (2d)   read the Q block and the K/V tile, clear the array 2
    QK     (2d)   output-stationary E-deep dot products              E + R - 1 + mac_latency
    DRAIN  (2d)   QK rows shift down into the 1D PEs                 R
    RMUPD  (1d)   running max                                        1
    EXP    (1d)   SLN for R rows, then PRM                           R + 1 + exp_latency
    SLNV   (2d)   weight-stationary V products into RNV              F + R + mac_latency
    FINAL  (1d)   reciprocal and AV = RNV * recip, per block         recip_latency + F + output_latency + 1
    OUTPUT (out)  one beat per query of the block                    min(C, P - block * C)

and one cycle after the last beat.  Column c of both arrays runs column 0's schedule c cycles late,
hidden under FINAL and OUTPUT, so C enters only through the blocks and beats.  The parameters are plain
numbers (:class:`CoreParams`), so the same model serves an ``rtl:`` section, an ``RtlConfig`` or an
architecture derived one; ``sim`` does not import ``rtl``.

**Mask.**  A tile is run iff some (key, query) pair of it is visible under the mask
(:func:`einloom.sim.formats.base.attention_mask`, bottom-right aligned causal): the tiles of a block
past its last visible key are skipped, and a block whose queries see no key (causal, P > M) runs no
tile, its outputs are 0.  For the bottom-right causal mask this is the RTL's rule
``tiles(pb) = clamp(floor((pb*C + C - 1 + M - P)/R) + 1, 0, ceil(M/R))``.

**Functional.**  :func:`run_core` with inputs executes every op it schedules with the number format's
primitives (:class:`~einloom.sim.formats.base.NumberFormat`) in the engine's order: QK's ``dot``, the
1D array's masked max, ``exp_diff``, the drained sum, SLNV's column MACs, the rescale, FINAL's
reciprocal and output.  A skipped tile computes nothing, so a wrong skip changes the output bits.

Limits: the mask is the core's (none or causal); one head per run; the output is never stalled
(backpressure on the output stream adds cycles the model does not see).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from einloom.sim.engine import Engine, Op
from einloom.sim.formats.base import NumberFormat, attention_mask

__all__ = ["CoreParams", "CoreRun", "run_core", "core_tiles"]


@dataclass(frozen=True)
class CoreParams:
    """The generated core's shape and unit latencies, as plain numbers.

    rows, cols : R keys per tile x C queries per block (the 2D array).
    head_dim, value_dim : E and F (temporal on the array).
    exp_latency, recip_latency, output_latency : the 1D array's pipelined units (cycles).
    mac_latency : the 2D PE's multiply-accumulate pipeline (cycles).
    """

    rows: int
    cols: int
    head_dim: int
    value_dim: int
    exp_latency: int
    recip_latency: int
    output_latency: int
    mac_latency: int = 2

    def __post_init__(self) -> None:
        for name in ("rows", "cols", "head_dim", "value_dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"CoreParams.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("exp_latency", "recip_latency", "output_latency", "mac_latency"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"CoreParams.{name} must be >= 0, got {getattr(self, name)}")

    def phases(self) -> dict[str, tuple[str, int]]:
        """Phase -> (unit, cycles) of one key tile (TILE .. SLNV) and of one block's FINAL."""
        r, e, f, mac = self.rows, self.head_dim, self.value_dim, self.mac_latency
        return {"TILE": ("2d", 2), "QK": ("2d", e + r - 1 + mac), "DRAIN": ("2d", r), "RMUPD": ("1d", 1),
                "EXP": ("1d", r + 1 + self.exp_latency), "SLNV": ("2d", f + r + mac),
                "FINAL": ("1d", self.recip_latency + f + self.output_latency + 1)}


def core_tiles(params: CoreParams, num_queries: int, num_keys: int, causal: bool) -> list[list[int]]:
    """Per block of C queries, the key tiles (indices) that hold a visible (key, query) pair."""
    r, c = params.rows, params.cols
    valid = attention_mask(num_keys, num_queries, causal)
    out = []
    for lo in range(0, num_queries, c):
        block = valid[:, lo:lo + c]
        out.append([m1 for m1 in range(-(-num_keys // r)) if block[m1 * r:(m1 + 1) * r].any()])
    return out


@dataclass
class CoreRun:
    """One run of the core model: cycles from the end of loading to the last output beat (+1), the
    ops with their start/end, busy cycles per unit, tiles run and skipped, and the output codes
    (``None`` without inputs)."""

    cycles: int
    tiles_run: int
    tiles_skipped: int
    busy: dict[str, float]
    ops: list[tuple[str, str, int, int, float, float]] = field(repr=False)   # (unit, phase, block, tile, start, end)
    events: int = 0
    output: np.ndarray | None = None


class _State:
    """Per-block running state of the functional run (codes)."""

    def __init__(self, fmt: NumberFormat, q, k, v, valid, lo: int, hi: int):
        self.fmt, self.q, self.k, self.v = fmt, q[:, lo:hi], k, v
        self.valid = valid[:, lo:hi]
        self.lo, self.hi = lo, hi
        self.first = True
        self.rm = self.rd = self.rnv = None

    def tile(self, m_lo: int, m_hi: int) -> None:
        """QK .. SLNV of one key tile, in the core's order (the golden model's operations)."""
        fmt = self.fmt
        p = self.hi - self.lo
        f_dim = self.v.shape[0]
        qk = fmt.dot(self.q, self.k[:, m_lo:m_hi].T)                                   # QK      [rows, p]
        valid = self.valid[m_lo:m_hi]
        has = valid.any(axis=0)
        lm = np.where(has, qk[np.argmax(valid, axis=0), np.arange(p)], 0)              # DRAIN: LM
        for row in range(m_hi - m_lo):
            lm = np.where(valid[row], fmt.maximum(lm, qk[row]), lm)
        rm_old = lm if self.first else self.rm                                         # RMUPD
        rm_new = lm if self.first else np.where(has, fmt.maximum(self.rm, lm), self.rm)
        sln = np.where(valid, fmt.exp_diff(np.where(valid, qk, rm_new[None, :]), rm_new[None, :]),
                       fmt.prob_zero(valid.shape))                                     # EXP
        prm = fmt.exp_diff(rm_old, rm_new)
        sld = fmt.prob_zero((p,))
        for row in reversed(range(m_hi - m_lo)):
            sld = fmt.prob_add(sld, sln[row])
        psum = fmt.acc_zero((f_dim, p))                                                # SLNV
        for row in range(m_hi - m_lo):
            psum = fmt.column_mac(psum, sln[row][None, :], self.v[:, m_lo + row][:, None])
        rd_old = fmt.prob_zero((p,)) if self.first else self.rd
        rnv_old = fmt.acc_zero((f_dim, p)) if self.first else self.rnv
        self.rd = fmt.rescale_add(prm, rd_old, sld)
        self.rnv = fmt.rescale_add(prm[None, :], rnv_old, psum)
        self.rm = rm_new
        self.first = False

    def final(self) -> np.ndarray:
        """FINAL: reciprocal and output; a query that saw no key outputs zero."""
        fmt = self.fmt
        seen = self.valid.any(axis=0)
        av = fmt.output_zero((self.v.shape[0], self.hi - self.lo))
        if seen.any():
            recip = fmt.reciprocal(self.rd[seen])
            av[:, seen] = fmt.output(self.rnv[:, seen], recip[None, :])
        return av


def run_core(params: CoreParams, num_queries: int, num_keys: int, causal: bool = False, *,
             fmt: NumberFormat | None = None, q: np.ndarray | None = None, k: np.ndarray | None = None,
             v: np.ndarray | None = None) -> CoreRun:
    """Simulate the core on P = ``num_queries`` queries and M = ``num_keys`` keys (see the module
    docstring).  With ``fmt`` and input codes ``q`` [E, P], ``k`` [E, M], ``v`` [F, M], also compute
    the output codes AV [F, P]."""
    if num_queries < 1 or num_keys < 1:
        raise ValueError(f"num_queries and num_keys must be >= 1, got {num_queries}, {num_keys}")
    functional = fmt is not None
    if functional:
        q, k, v = (np.asarray(x, dtype=np.int64) for x in (q, k, v))
        if q.shape != (params.head_dim, num_queries) or k.shape != (params.head_dim, num_keys) \
                or v.shape != (params.value_dim, num_keys):
            raise ValueError(f"input shapes Q {q.shape}, K {k.shape}, V {v.shape} do not match E={params.head_dim}, "
                             f"F={params.value_dim}, P={num_queries}, M={num_keys}")
        valid = attention_mask(num_keys, num_queries, causal)
        out = np.zeros((params.value_dim, num_queries), dtype=np.int64)
    phases = params.phases()
    tiles = core_tiles(params, num_queries, num_keys, causal)
    r, c = params.rows, params.cols
    records: list[tuple[str, str, int, int, float, float]] = []
    actions: dict[int, Any] = {}

    def epochs():
        prev: Op | None = None
        for pb, run in enumerate(tiles):
            lo, hi = pb * c, min(num_queries, pb * c + c)
            state = _State(fmt, q, k, v, valid, lo, hi) if functional else None
            ops = []
            for phase, tile in [("BLOCK", -1)] + [(ph, m1) for m1 in run for ph in
                                                   ("TILE", "QK", "DRAIN", "RMUPD", "EXP", "SLNV")] + \
                    [("FINAL", -1), ("OUTPUT", -1)]:
                unit, cycles = {"BLOCK": ("ctl", 1), "OUTPUT": ("out", hi - lo)}.get(phase) or phases[phase]
                op = Op(unit, phase, 0, float(cycles), deps=(prev,) if prev is not None else (),
                        work=float(cycles), cause="dependency", tile=(pb, tile))
                if functional and phase == "SLNV":
                    actions[id(op)] = (state.tile, (tile * r, min(num_keys, tile * r + r)))
                elif functional and phase == "FINAL":
                    actions[id(op)] = (lambda s=state, a=lo, b=hi: out.__setitem__((slice(None), slice(a, b)),
                                                                                  s.final()), ())
                ops.append(op)
                prev = op
            yield ops

    def on_schedule(op: Op) -> None:
        records.append((op.unit, op.name, op.tile[0], op.tile[1], op.start, op.end))
        act = actions.pop(id(op), None)
        if act is not None:
            act[0](*act[1])

    engine = Engine(("ctl", "2d", "1d", "out"), window=1, on_schedule=on_schedule)
    makespan = engine.run(epochs())
    run_tiles = sum(len(t) for t in tiles)
    return CoreRun(int(round(makespan)) + 1, run_tiles, len(tiles) * -(-num_keys // r) - run_tiles,
                   {u: s.busy for u, s in engine.units.items()}, records, engine.events,
                   out if functional else None)
