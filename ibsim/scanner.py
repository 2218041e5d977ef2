"""IB's market scanner over ibsim's own universe: the scan codes it knows (as the XML of
reqScannerParameters) and the ranking of its US stocks by each, from the simulated market."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .contracts import ContractSpec, Universe
from .market import Market, Quote

MAX_ROWS = 50  # IB's cap on a scanner's numberOfRows
INSTRUMENT = "STK"
LOCATIONS = ("STK.US.MAJOR", "STK.US", "STK.NASDAQ", "STK.NYSE", "STK.ARCA")


class ScanError(ValueError):
    """A subscription ibsim cannot serve; the text is IB's kind of answer."""


@dataclass(frozen=True, slots=True)
class _Scan:
    name: str
    key: Callable[[Quote, float], float]  # (quote, previous session's volume) -> score
    keep: Callable[[float], bool] = lambda score: True


def _change(q: Quote, _: float) -> float:
    return q.last / q.prev_close - 1 if q.prev_close else 0.0


def _from_open(q: Quote, _: float) -> float:
    return q.last / q.open - 1 if q.open else 0.0


# Each ranks highest score first; scores of the losers are negated changes.
_SCANS: dict[str, _Scan] = {
    "TOP_PERC_GAIN": _Scan("Top % Gainers", _change, lambda s: s > 0),
    "TOP_PERC_LOSE": _Scan("Top % Losers", lambda q, v: -_change(q, v), lambda s: s > 0),
    "MOST_ACTIVE": _Scan("Most Active", lambda q, _: q.volume),
    "HOT_BY_VOLUME": _Scan("Hot Contracts by Volume", lambda q, v: q.volume / v if v else 0.0),
    "HOT_BY_PRICE": _Scan("Hot Contracts by Price", lambda q, v: abs(_change(q, v))),
    "TOP_OPEN_PERC_GAIN": _Scan("Top % Gainers Since Open", _from_open, lambda s: s > 0),
    "TOP_OPEN_PERC_LOSE": _Scan(
        "Top % Losers Since Open", lambda q, v: -_from_open(q, v), lambda s: s > 0
    ),
}
SCAN_CODES = tuple(_SCANS)


def parameters_xml() -> str:
    """reqScannerParameters' answer: instruments, locations and scan types, shaped as IB's."""
    locations = "".join(
        f"<Location><displayName>{code}</displayName><locationCode>{code}</locationCode>"
        f"<instruments>{INSTRUMENT}</instruments></Location>"
        for code in LOCATIONS
    )
    scans = "".join(
        f"<ScanType><displayName>{scan.name}</displayName><scanCode>{code}</scanCode>"
        f"<instruments>{INSTRUMENT}</instruments><absoluteColumns>false</absoluteColumns>"
        "</ScanType>"
        for code, scan in _SCANS.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><ScanParameterResponse>'
        f"<InstrumentList><Instrument><name>US Stocks</name><type>{INSTRUMENT}</type>"
        "<filters>PRICE,VOLUME</filters></Instrument></InstrumentList>"
        f"<LocationTree><Location><displayName>US Stocks</displayName>"
        f"<LocationTree>{locations}</LocationTree></Location></LocationTree>"
        f"<ScanTypeList>{scans}</ScanTypeList></ScanParameterResponse>"
    )


def rank(
    market: Market, universe: Universe, code: str, instrument: str, location: str,
    rows: int, t: float, above_price: float | None = None, below_price: float | None = None,
) -> list[ContractSpec]:
    """The stocks ranked by scan ``code`` at time ``t``, best first (ScanError if unknown)."""
    scan = _SCANS.get(code.upper())
    if scan is None:
        raise ScanError(f"Scanner type with code {code!r} is not supported")
    if instrument.upper() != INSTRUMENT or location.upper() not in LOCATIONS:
        raise ScanError(f"Scanner instrument {instrument!r} at {location!r} is not supported")
    scored = []
    for spec in universe:
        if spec.sec_type != "STK":
            continue
        q = market.quote(spec, t)
        if above_price is not None and q.last <= above_price:
            continue
        if below_price is not None and q.last >= below_price:
            continue
        prev = market.last_session(spec, market.last_session(spec, t).start)
        bar = market.session_bar(spec, prev, prev.end)
        score = scan.key(q, bar.volume if bar else 0.0)
        if scan.keep(score):
            scored.append((-score, spec.symbol, spec))
    limit = MAX_ROWS if rows <= 0 else min(rows, MAX_ROWS)
    return [spec for _, _, spec in sorted(scored)[:limit]]
