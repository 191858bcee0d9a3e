"""Operands and golden outputs of a lane-core run with per-key state chains (``rtl/lanes/recurrence.py``,
``rtl/lane_state.py``): the surrogate cascade's memories (its state operands unused, zeros), each state
update's operand memory ``u<i>`` (word (block, f) = the C lanes' input codes of ``B[f, query]``), and the
golden outputs from ``run_in_format`` of the **original** cascade (the per-key recurrence itself)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

import numpy as np


def recurrence_operands(plan: Any, shape: Any, inputs: Mapping[str, np.ndarray]) -> Any:
    """:class:`~einloom.rtl.lane_build.CoreRunData` of ``plan`` (a plan with ``recurrence``) on the
    original cascade's input codes ``inputs``."""
    from einloom.einsum.cascade import var_of
    from einloom.einsum.interpret import _align
    from einloom.rtl.lane_build import core_operands
    from einloom.sim.formats.interpret import run_in_format
    rec = plan.recurrence
    data = core_operands(replace(plan, recurrence=None), shape,
                         rec.surrogate_inputs(dict(inputs), plan.arith, dict(plan.schedule.sizes)))
    C, F = shape.cols, shape.value_dim
    P, B = data.num_queries, data.blocks
    names = [c.einsum for c in plan.program.chains]
    for chain in rec.chains:
        if chain.operand is None:
            continue
        codes = np.asarray(inputs[chain.operand]).astype(np.int64)          # [F, queries]
        pad = np.zeros((F, shape.query_blocks * C), np.int64)
        pad[:, :P] = codes[:, :P]
        words = []
        for b in range(shape.query_blocks):
            for f in range(F):
                w = 0
                for c in range(C):
                    w |= (int(pad[f, b * C + c]) & 0xFFFF) << (16 * c)
                words.append(w)
        data.words[f"u{names.index(chain.reader)}"] = words[:B * F] if B * F else words
    ref = run_in_format(rec.original, plan.arith, dict(inputs))
    st = plan.program.structure
    fv, lane = var_of(st.value), var_of(st.lane)
    for name in plan.image.outputs:
        have = tuple(var_of(r) for r in rec.original.tensors[name].ranks)
        want = ((fv,) if fv in have else ()) + (lane,)
        codes = np.asarray(ref.codes[name])
        vv = ref.valid.get(name)
        vv = np.ones(codes.shape, bool) if vv is None else np.asarray(vv)
        data.golden[name] = _align(codes, have, want).reshape(-1, P) & ((1 << shape.out_bits) - 1)
        data.valid[name] = _align(vv, have, want).reshape(-1, P)
    return data
