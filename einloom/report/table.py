"""Plain-text tables that read well in a terminal."""
from __future__ import annotations

from typing import Any, Sequence


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1e6 or abs(value) < 1e-3:
            return f"{value:.3e}"
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None,
                 align: str | None = None) -> str:
    """A boxed-free table: header, rule, rows.  ``align`` is one of 'l'/'r' per column (numbers right)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for k, text in enumerate(row):
            widths[k] = max(widths[k], len(text))
    if align is None:
        align = "".join("r" if rows and all(isinstance(r[k], (int, float)) and not isinstance(r[k], bool)
                                            for r in rows if r[k] is not None) and any(r[k] is not None for r in rows)
                        else "l" for k in range(len(headers)))

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if a == "r" else v.ljust(w) for v, w, a in zip(values, widths, align)).rstrip()

    out = []
    if title:
        out.append(title)
    out.append(line(list(headers)))
    out.append("  ".join("-" * w for w in widths))
    out += [line(row) for row in cells]
    return "\n".join(out)
