"""Size and limit policy: the largest inputs einloom accepts, checked before any allocation or loop.

Every limit here is a documented promise (README "Limits"): a value beyond it is rejected at the door
with an error that names the limit, never attempted (no multi-terabyte allocation, no minutes-long
factorisation, no ``RecursionError``).  The numbers are generous for the field: the longest sequence
in FuseMax's evaluation is 1M tokens (2**20); the limits allow 16x that.
"""
from __future__ import annotations

#: Largest user file einloom reads (YAML, JSON): 2 MiB.  The library's largest spec is about 3 KB.
MAX_FILE_BYTES = 2 * 1024 * 1024
#: Largest number of YAML nodes one document may expand to (aliases counted at every use).
MAX_YAML_NODES = 200_000
#: Deepest nesting of YAML mappings/lists.
MAX_YAML_DEPTH = 64
#: Longest single scalar (a string or number in a file): 64 KiB.
MAX_SCALAR_CHARS = 64 * 1024
#: Largest size of one rank (any rank: P, M, E, heads, ...): 2**24.
MAX_RANK_SIZE = 2 ** 24
#: Longest sequence length (P or M of a workload, --seq-len): 2**24 = 16M tokens.
MAX_SEQ_LEN = 2 ** 24
#: Largest batch.
MAX_BATCH = 2 ** 20
#: Largest number of elements of one tensor the NumPy interpreter (``einloom run``) allocates:
#: 2**27 float64 values = 1 GiB.  The analytical model has no such limit (it never allocates tensors).
MAX_TENSOR_ELEMENTS = 2 ** 27
#: Longest Einsum line or param expression, in characters.
MAX_EXPRESSION_CHARS = 4096
#: Deepest nesting of brackets and parentheses in one expression.
MAX_EXPRESSION_DEPTH = 48
#: Largest mapping tiling factor (a factor is at most a rank size).
MAX_FACTOR = MAX_RANK_SIZE
#: Largest architecture array dimension (rows, cols, width) for the cost model.
MAX_ARRAY_DIM = 2 ** 16
