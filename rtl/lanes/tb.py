"""Drive an RTL lane as the 2D array would, and check it against the reference executor.

:class:`LaneDriver` is simulator-agnostic: it talks to the lane through a small port adapter
(``set(name, value)``, ``get(name)``, ``await tick()``), with adapters for Amaranth's simulator
(:class:`AmaranthPort`) and cocotb (:class:`CocotbPort`).  Per query block it plays the 2D array:
writes the tile's score sums (the golden model's, :func:`~einloom.rtl.lanes.execute.golden_products`)
into the lane's score buffers, collects the weights the lane emits, computes each value product's
column sums from them exactly as the executor does (a ``mac`` chain over the tile's keys), writes
them back, and collects the outputs.  :func:`check_block` compares weights, outputs and the busy
cycles with the executor's run and the program's cycle formula.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from einloom.rtl.lanes.encode import Image
from einloom.rtl.lanes.execute import LaneRun, Products
from einloom.sim.formats.arith.base import Arith


@dataclass
class BlockResult:
    """What one lane did in one query block."""

    lane: int
    busy: int = 0
    cycles: int = 0
    weights: list[tuple[int, int, int, int]] = field(default_factory=list)   # (chain, k, data, valid)
    outputs: list[tuple[int, int, int, int]] = field(default_factory=list)   # (output, f, data, valid)


def prepare(spec: str, sizes: dict[str, int], seed: int = 0, arch: Any = None,
            number_format: dict[str, Any] | None = None):
    """(program, products, executor run, arith) of ``spec`` at ``sizes`` in ``number_format`` (an
    ``rtl.number_format`` mapping, default bf16) with random inputs (N(0, 1.5) quantized), on ``arch``
    (default: ``examples/archs/rtl-4x4-int8.yaml``'s 4x4 array)."""
    from pathlib import Path

    from einloom.cost_models import load_arch
    from einloom.einsum import load_cascade
    from einloom.rtl.lanes.execute import build, execute, golden_products
    from einloom.sim.formats import make_format
    from einloom.sim.formats.arith import arith_for
    if arch is None:
        arch = load_arch(str(Path(__file__).resolve().parents[2] / "examples/archs/rtl-4x4-int8.yaml"))
    cascade = load_cascade(spec)
    program, schedule = build(cascade, arch, sizes)
    fmt = make_format(number_format or {"kind": "bf16"}, head_dim=sizes["E"])
    arith = arith_for(fmt)
    rng = np.random.default_rng(seed)
    inputs = {t: fmt.quantize(rng.normal(0.0, 1.5, [schedule.sizes[r] for r in cascade.tensors[t].ranks]))
              for t in cascade.inputs}
    params = dict(schedule.mapping.params)
    products = golden_products(program, cascade, arith, inputs, params)
    return program, products, execute(program, cascade, arith, inputs, params, products=products), arith


class AmaranthPort:
    """Port adapter for ``amaranth.sim`` testbenches (``ctx`` of ``add_testbench``)."""

    def __init__(self, ctx: Any, lane: Any):
        self.ctx, self.lane = ctx, lane

    def set(self, name: str, value: int) -> None:
        self.ctx.set(getattr(self.lane, name), int(value))

    def get(self, name: str) -> int:
        return int(self.ctx.get(getattr(self.lane, name)))

    async def tick(self) -> None:
        await self.ctx.tick()


class CocotbPort:
    """Port adapter for cocotb (the Verilog ports carry Amaranth's names)."""

    def __init__(self, dut: Any):
        self.dut = dut

    def set(self, name: str, value: int) -> None:
        getattr(self.dut, name).value = int(value)

    def get(self, name: str) -> int:
        return int(getattr(self.dut, name).value)

    async def tick(self) -> None:
        from cocotb.triggers import ReadOnly, RisingEdge
        await RisingEdge(self.dut.clk)
        await ReadOnly()
        await _after_readonly()


async def _after_readonly() -> None:
    from cocotb.triggers import Timer
    await Timer(1, unit="ps")


async def write_words(port: Any, prefix: str, select: str, blocks, *, settle: bool = True) -> None:
    """Write memory words through a load port: for each ``(selector, words)`` of ``blocks``, word i at
    address i with ``{prefix}_{select}`` = selector (``{prefix}_en``, ``_addr``, ``_data``), one per
    cycle, then drop ``{prefix}_en`` (for a cycle with ``settle``; without, the caller's next tick
    does).  The lanes' program port (``load_*``, ``target``)
    and the lane core's program and memory ports (``prog_*``, ``load_*``) all work this way."""
    for selector, words in blocks:
        for addr, word in enumerate(words):
            port.set(f"{prefix}_en", 1)
            port.set(f"{prefix}_{select}", selector)
            port.set(f"{prefix}_addr", addr)
            port.set(f"{prefix}_data", word)
            await port.tick()
    port.set(f"{prefix}_en", 0)
    if settle:
        await port.tick()


class LaneDriver:
    """Plays the 2D array for one lane (see the module docstring)."""

    def __init__(self, port: Any, image: Image, products: Products, arith: Arith):
        self.port, self.image, self.prod, self.arith = port, image, products, arith
        self.program = image.program

    async def load(self, words: dict[str, list[int]]) -> None:
        """Write a program through the load port (bundles, section table, constants)."""
        await write_words(self.port, "load", "target",
                          ((0, words["bundles"]), (1, words["sections"]), (2, words["constants"])))

    async def _write(self, addr: int, data: int, valid: bool) -> None:
        p = self.port
        p.set("buf_we", 1)
        p.set("buf_addr", addr)
        p.set("buf_data", data)
        p.set("buf_valid", int(valid))
        await p.tick()
        p.set("buf_we", 0)

    async def _go(self) -> None:
        self.port.set("go", 1)
        await self.port.tick()
        self.port.set("go", 0)

    async def run_block(self, lane: int, limit: int = 1_000_000) -> BlockResult:
        """Run one query block on the lane standing for lane index ``lane`` of the products."""
        p, prog, prod, img = self.port, self.program, self.prod, self.image
        res = BlockResult(lane)
        p.set("query", int(prod.coords["q"][lane]))
        p.set("tiles", prod.tiles)
        p.set("start", 1)
        await p.tick()
        p.set("start", 0)
        tile = 0
        for _ in range(limit):
            res.cycles += 1
            res.busy += p.get("busy")
            if p.get("weight_en"):
                res.weights.append((p.get("weight_tag"), p.get("weight_index"), p.get("weight_data"),
                                    p.get("weight_valid")))
            if p.get("out_en"):
                res.outputs.append((p.get("out_tag"), p.get("out_index"), p.get("out_data"), p.get("out_valid")))
            if p.get("done"):
                return res
            if p.get("wait_scores"):
                for i, (d, v) in enumerate(prod.scores):
                    base = img.buffers[f"in.score{i}"]
                    for k in range(prog.tile):
                        await self._write(base + k, _bits(d[tile, k, lane]), bool(v[tile, k, lane]))
                await self._go()
                continue
            if p.get("wait_values"):
                for i in range(len(prog.chains)):
                    sums = self.column_sums(res, i, tile, lane)
                    base = img.buffers[f"in.value{i}"]
                    for f, (d, v) in enumerate(sums):
                        await self._write(base + f, d, v)
                await self._go()
                tile += 1
                continue
            await p.tick()
        raise RuntimeError(f"lane {lane} did not finish in {limit} cycles")

    def column_sums(self, res: BlockResult, chain: int, tile: int, lane: int) -> list[tuple[int, bool]]:
        """The 2D array's column sums of value product ``chain`` for ``tile`` from the lane's weights."""
        a, prog = self.arith, self.program
        w = [x for x in res.weights if x[0] == chain][-prog.tile:]
        vd, vv = self.prod.values[chain]
        first = prog.structure.weight_of[prog.chains[chain].einsum][1]
        out = []
        for f in range(prog.values):
            acc, any_valid = a.const(0.0), False
            for k in range(prog.tile):
                if w[k][3] and vv[f, tile, k, lane]:
                    wk = _value(a, w[k][2])
                    acc = a.mac(acc, wk, vd[f, tile, k, lane]) if first else a.mac(acc, vd[f, tile, k, lane], wk)
                    any_valid = True
            out.append((_bits(acc), any_valid))
        return out


def _bits(x: Any) -> int:
    """A format value as the lane's word: fp32 bits, or a fixed-point ``(c, f)`` packed (fixed_units)."""
    x = np.asarray(x)
    if x.dtype.names:
        from einloom.rtl.lanes.fixed_units import pack_value
        return pack_value(int(x["c"]), int(x["f"]))
    return int(x.astype(np.uint32)) if x.dtype != np.uint32 else int(x)


def _value(arith: Arith, word: int) -> np.ndarray:
    """The lane's word as a value of ``arith`` (inverse of :func:`_bits`)."""
    if arith.dtype.names:
        from einloom.rtl.lanes.fixed_units import unpack_value
        c, f = unpack_value(int(word))
        out = np.zeros((), dtype=arith.dtype)
        out["c"], out["f"] = c, f
        return out
    return np.asarray(word, dtype=arith.dtype)


def check_block(res: BlockResult, run: LaneRun, image: Image, arith: Arith, tiles: int) -> list[str]:
    """Differences between the lane's block ``res`` and the executor's ``run`` (empty when equal)."""
    prog = image.program
    problems = []
    lane = res.lane
    want_busy = image.cycles(tiles)
    if res.busy != want_busy:
        problems.append(f"lane {lane}: {res.busy} busy cycles, the program predicts {want_busy}")
    for i in range(len(prog.chains)):
        got = [x for x in res.weights if x[0] == i]
        if len(got) != tiles * prog.tile:
            problems.append(f"lane {lane}: {len(got)} weights of product {i}, expected {tiles * prog.tile}")
            continue
        for t in range(tiles):
            wd, wv = run.weights[i][t]
            for k in range(prog.tile):
                _, kk, d, v = got[t * prog.tile + k]
                if kk != k or v != int(wv[k, lane]) or (v and d != _bits(wd[k, lane])):
                    problems.append(f"lane {lane} tile {t} key {k}: weight {d:#x}/{v}, "
                                    f"expected {_bits(wd[k, lane]):#x}/{int(wv[k, lane])}")
    for o, name in enumerate(image.outputs):
        beats = sorted((x for x in res.outputs if x[0] == o), key=lambda x: x[1])
        flat = run.per_lane[name]
        got = np.array([int(arith.to_output(_value(arith, b[2]))) for b in beats])
        if len(got) != flat.shape[0] or not np.array_equal(got, flat[:, lane]):
            problems.append(f"lane {lane}: output {name} {got.tolist()}, expected {flat[:, lane].tolist()}")
    return problems
