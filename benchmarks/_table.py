"""Plain-text and Markdown tables (the only formatting the CLI and the report share)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["format_fine_us", "format_us", "markdown_table", "text_table"]


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        cells = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def format_us(microseconds: float) -> str:
    """A duration given in microseconds, in the unit that reads best: "850.0 us", "1.24 ms"."""
    return f"{microseconds / 1000:.2f} ms" if microseconds >= 1000 else f"{microseconds:.1f} us"


def format_fine_us(microseconds: float) -> str:
    """Like `format_us`, with the digits a sub-microsecond figure needs: "0.052 us", "2.41 us"."""
    if microseconds < 1:
        return f"{microseconds:.3f} us"
    if microseconds < 10:
        return f"{microseconds:.2f} us"
    return format_us(microseconds)
