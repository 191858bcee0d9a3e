"""Number formats and their bit-exact golden models (einloom.sim.formats).

``NumberFormat`` (base.py) is the interface the RTL generator and the testbenches use; ``FixedFormat``
(fixed.py) is two's-complement fixed point; a float format (bf16.py) plugs in the same way.
"""
from einloom.sim.formats.base import (  # noqa: F401
    AttentionTrace, NumberFormat, attention_mask, float_attention, golden_attention,
)
from einloom.sim.formats.fixed import FixedFormat, FixedParams  # noqa: F401
