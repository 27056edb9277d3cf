"""Numbers and Markdown tables for the report."""

from __future__ import annotations

from tests.bench.timing import Series


def ms(value: float) -> str:
    if value < 10:
        return f"{value:.2f}"
    if value < 1000:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def ratio(actstream: float, actrack: float) -> str:
    if actrack <= 0:
        return "-"
    value = actstream / actrack
    text = f"{value:.1f}x" if value < 100 else f"{value:,.0f}x"
    return f"**{text}**" if value < 1 else text


def stats(series: Series | None) -> list[str]:
    if series is None:
        return ["n/a", "", "", "n/a"]
    if not series.ms:
        return ["-", "-", "-", series.query_range()]
    return [ms(series.p50), ms(series.p95), ms(series.max), series.query_range()]


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- sections -----------------------------------------------------------------------------
