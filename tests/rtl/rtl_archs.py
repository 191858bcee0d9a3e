"""Variants of examples/archs/rtl-4x4-int8.yaml for tests: another array or buffer shape, with the
global buffer (capacity, bank word, banks) made to agree, so the architecture still describes the core."""
from pathlib import Path

ARCHS = Path(__file__).resolve().parents[2] / "examples" / "archs"
GOOD = (ARCHS / "rtl-4x4-int8.yaml").read_text()


def line_of(text: str, fragment: str) -> int:
    return text[:text.index(fragment)].count("\n") + 1


def shaped(rows: int, cols: int, e: int = 16, f: int = 16, max_keys: int = 256, max_queries: int = 64,
           name: str | None = None) -> str:
    q = -(-max_queries // cols) * cols * e
    kv = -(-max_keys // rows) * rows * (e + f)
    swaps = [("  rows: 4 ", f"  rows: {rows} "), ("  cols: 4 ", f"  cols: {cols} "), ("  width: 4 ", f"  width: {cols} "),
             ("head_dim: 16", f"head_dim: {e}"), ("value_dim: 16", f"value_dim: {f}"),
             ("max_keys: 256", f"max_keys: {max_keys}"), ("max_queries: 64", f"max_queries: {max_queries}"),
             ("capacity_bytes: 9216", f"capacity_bytes: {q + kv}"), ("row_bits: 128", f"row_bits: {max(e, f) * 8}"),
             ("banks: 12", f"banks: {cols + 2 * rows}")] + ([("name: rtl-4x4-int8", f"name: {name}")] if name else [])
    text = GOOD
    for old, new in swaps:
        assert old in text, old     # a fragment that no longer matches must not pass silently
        text = text.replace(old, new)
    return text
