"""The testbench's golden model for the core's masks: the hardware's op order (``RTL_ATTENTION``,
``einloom.sim.formats.attention``) with the mask as the cascade's ``where`` predicate, run by the format
interpreter.  Plain and causal are ``golden_attention`` itself; a window (with optional sinks) writes the
library's sliding-window / sinks-window predicate into the same cascade, so the op order of every
value is unchanged and only the set of visible keys differs."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from einloom.sim.formats import golden_attention
from einloom.sim.formats.arith import arith_for
from einloom.sim.formats.attention import RTL_ATTENTION, _DOT
from einloom.sim.formats.base import NumberFormat, attention_inputs
from einloom.sim.rtl_core import core_mask

_KEY = "(m1*M0 + m0)"


@lru_cache(maxsize=None)
def _windowed_cascade(causal: bool):
    from einloom.einsum.loader import parse_cascade_text
    band = f"((p + offset - {_KEY} < window) or ({_KEY} < sinks))"
    pred = f"({_KEY} <= p + offset) and {band}" if causal else band
    text = RTL_ATTENTION.format(suffix="-window", qk=f"where({pred}, {_DOT})")
    text = text.replace("  offset: M - P\n", "  offset: M - P\n  window: 1\n  sinks: 0\n")
    return parse_cascade_text(text, "<einloom.rtl.tb.reference>")


def golden_masked(fmt: NumberFormat, q: np.ndarray, k: np.ndarray, v: np.ndarray, *, tile_m: int,
                  causal: bool = False, window: int = 0, sinks: int = 0) -> np.ndarray:
    """AV codes [F, P] of the core with its mask (``window`` 0: no window; see
    :func:`einloom.sim.rtl_core.core_mask`); a query that sees no key outputs ``output_zero``."""
    if window <= 0:
        return golden_attention(fmt, q, k, v, tile_m=tile_m, causal=causal)[0]
    from einloom.sim.formats.interpret import run_in_format
    q, k, v = attention_inputs(q, k, v)
    (_, p_dim), (_, m_dim), (f_dim, _) = q.shape, k.shape, v.shape
    scale = fmt.scale_value if fmt.scale else 1.0
    result = run_in_format(_windowed_cascade(causal), arith_for(fmt), {"Q": q, "K": k, "V": v},
                           {"M0": tile_m, "scale": scale, "window": window, "sinks": sinks})
    seen = core_mask(m_dim, p_dim, causal, window, sinks).any(axis=0)
    av = fmt.output_zero((f_dim, p_dim))
    av[:, seen] = result.codes["AV"][:, seen]
    return av
