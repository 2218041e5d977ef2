"""The market scanner in words: a ranking (/scan CODE) and the scan codes there are (/scan)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.messages.document import Doc, Table
from bot.messages.numbers import price, qty
from engine.reports import ScanReport


def _change(pct: float | None) -> str:
    return "—" if pct is None else f"{pct:+.2f}%"


def scan_doc(report: ScanReport) -> Doc:
    if not report.rows:
        return Doc(f"Scan {report.code}: nothing ranks now", icon="🔎")
    rows = tuple(
        (str(r.rank), r.symbol, price(r.last), _change(r.change_pct), qty(r.volume))
        for r in report.rows
    )
    return Doc(
        f"Scan {report.code}: the first {len(rows)}",
        (Table(("#", "sym", "last", "chg", "volume"), rows),),
        icon="🔎",
    )


def scan_codes_doc(codes: Sequence[str]) -> Doc:
    return Doc(
        "Scan codes",
        (", ".join(codes), "e.g. /scan TOP_PERC_GAIN 10"),
        icon="🔎",
    )
