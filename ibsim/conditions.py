"""Order conditions (IB's "conditional orders"): the condition types as the API sends them, their
wire and JSON forms, and their evaluation against the simulated market and clock."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .market import Quote

AND, OR = "a", "o"

# IB's trigger methods for price conditions, and the price ibsim compares for each (the
# "double" methods are taken as their single forms: one 5-second step is enough).
LAST_METHODS = frozenset({0, 2, 3})  # default, last, double-last
BID_ASK_METHODS = frozenset({1, 4})  # double bid/ask, bid/ask
LAST_OR_BID_ASK = 7
MIDPOINT = 8
TRIGGER_METHODS = LAST_METHODS | BID_ASK_METHODS | {LAST_OR_BID_ASK, MIDPOINT}


class ConditionError(ValueError):
    """A condition ibsim cannot honour; the text says why, for the order's rejection."""


@dataclass(frozen=True, slots=True)
class PriceCondition:
    COND_TYPE: ClassVar[int] = 1
    NAME: ClassVar[str] = "Price"
    conjunction: str = AND
    is_more: bool = True
    price: float = 0.0
    con_id: int = 0
    exchange: str = ""
    trigger_method: int = 0


@dataclass(frozen=True, slots=True)
class TimeCondition:
    COND_TYPE: ClassVar[int] = 3
    NAME: ClassVar[str] = "Time"
    conjunction: str = AND
    is_more: bool = True
    # "YYYYMMDD HH:MM:SS[ zone]" (the gateway's zone if none) or "YYYYMMDD-HH:MM:SS" (UTC)
    time: str = ""


@dataclass(frozen=True, slots=True)
class MarginCondition:
    COND_TYPE: ClassVar[int] = 4
    NAME: ClassVar[str] = "Margin"
    conjunction: str = AND
    is_more: bool = True
    percent: int = 0


@dataclass(frozen=True, slots=True)
class ExecutionCondition:
    COND_TYPE: ClassVar[int] = 5
    NAME: ClassVar[str] = "Execution"
    conjunction: str = AND
    sec_type: str = ""
    exchange: str = ""
    symbol: str = ""


@dataclass(frozen=True, slots=True)
class VolumeCondition:
    COND_TYPE: ClassVar[int] = 6
    NAME: ClassVar[str] = "Volume"
    conjunction: str = AND
    is_more: bool = True
    volume: int = 0
    con_id: int = 0
    exchange: str = ""


@dataclass(frozen=True, slots=True)
class PercentChangeCondition:
    COND_TYPE: ClassVar[int] = 7
    NAME: ClassVar[str] = "PercentChange"
    conjunction: str = AND
    is_more: bool = True
    change_percent: float = 0.0
    con_id: int = 0
    exchange: str = ""


OrderCondition = (
    PriceCondition
    | TimeCondition
    | MarginCondition
    | ExecutionCondition
    | VolumeCondition
    | PercentChangeCondition
)
_ALL: tuple[type[Any], ...] = (
    PriceCondition, TimeCondition, MarginCondition, ExecutionCondition, VolumeCondition,
    PercentChangeCondition,
)  # fmt: skip
CONDITION_TYPES: dict[int, type[Any]] = {cls.COND_TYPE: cls for cls in _ALL}
# The types ibsim honours; the others are decoded (their layout is known) but rejected.
SUPPORTED = frozenset({1, 3, 6, 7})
# Conditions that watch a contract's market (their ``con_id``).
_MARKET = (PriceCondition, VolumeCondition, PercentChangeCondition)


# --- wire and JSON forms -----------------------------------------------------------------------


def field_count(cond_type: int) -> int:
    """How many fields follow ``condType`` on the wire (the dataclass fields, in order)."""
    return len(dataclasses.fields(CONDITION_TYPES[cond_type]))


def from_fields(cond_type: int, values: Sequence[str]) -> OrderCondition:
    """A condition from its wire fields (after condType), as ib_async and ibapi encode them."""
    cls = CONDITION_TYPES[cond_type]
    kwargs: dict[str, Any] = {}
    for f, text in zip(dataclasses.fields(cls), values, strict=True):
        kwargs[f.name] = _parse(type(f.default), text, f.default)
    return cls(**kwargs)


def to_fields(cond: OrderCondition) -> list[str]:
    """condType and the condition's fields, as openOrder and completedOrder carry them."""
    out = [str(cond.COND_TYPE)]
    for f in dataclasses.fields(cond):
        value = getattr(cond, f.name)
        out.append(("1" if value else "0") if isinstance(value, bool) else str(value))
    return out


def _parse(typ: type, text: str, default: Any) -> Any:
    if typ is str:
        return text
    if not text:
        return default
    try:
        if typ is bool:
            return text not in ("0", "false", "False")
        if typ is int:
            return int(float(text))
        return float(text)
    except ValueError:
        raise ConditionError(f"condition field {text!r} is not a number") from None


def to_json(cond: OrderCondition) -> dict[str, Any]:
    return {"type": cond.COND_TYPE, **dataclasses.asdict(cond)}


def from_json(item: dict[str, Any]) -> OrderCondition:
    fields = dict(item)
    return CONDITION_TYPES[fields.pop("type")](**fields)


# --- validation and evaluation -----------------------------------------------------------------


def check_supported(
    conditions: Iterable[OrderCondition], known_con_id: Callable[[int], bool], time_zone: str
) -> None:
    """Raise ConditionError for a condition ibsim would otherwise have to ignore."""
    for cond in conditions:
        if cond.COND_TYPE not in SUPPORTED:
            raise ConditionError(
                f"{cond.NAME} conditions (type {cond.COND_TYPE}) are not supported; ibsim "
                "honours Price, Time, Volume and PercentChange conditions"
            )
        if cond.conjunction not in (AND, OR):
            raise ConditionError(f"Invalid condition conjunction {cond.conjunction!r}")
        if isinstance(cond, _MARKET) and not known_con_id(cond.con_id):
            raise ConditionError(f"Invalid contract id {cond.con_id} in a {cond.NAME} condition")
        if isinstance(cond, PriceCondition) and cond.trigger_method not in TRIGGER_METHODS:
            raise ConditionError(f"Invalid trigger method {cond.trigger_method}")
        if isinstance(cond, TimeCondition):
            parse_time(cond.time, time_zone)


def watched_con_ids(conditions: Iterable[OrderCondition]) -> set[int]:
    return {c.con_id for c in conditions if isinstance(c, _MARKET)}


_TIME = re.compile(r"^(\d{8})([ -])(\d{1,2}:\d{2}(?::\d{2})?)(?:\s+(\S+))?$")


def parse_time(text: str, time_zone: str) -> float:
    """A TimeCondition's time as epoch seconds: ``YYYYMMDD HH:MM:SS`` in the given zone (the
    gateway's), ``... Area/City`` in that zone, ``YYYYMMDD-HH:MM:SS`` in UTC."""
    m = _TIME.match(text.strip())
    if m is None:
        raise ConditionError(f"Invalid time {text!r} in a Time condition")
    day, sep, clock, zone_name = m.groups()
    if sep == "-" and zone_name is None:
        zone_name = "UTC"
    try:
        zone = ZoneInfo(zone_name or time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConditionError(f"Unknown time zone {zone_name!r} in a Time condition") from None
    fmt = "%Y%m%d %H:%M:%S" if clock.count(":") == 2 else "%Y%m%d %H:%M"
    try:
        naive = dt.datetime.strptime(f"{day} {clock}", fmt)
    except ValueError:
        raise ConditionError(f"Invalid time {text!r} in a Time condition") from None
    return naive.replace(tzinfo=zone).timestamp()


QuoteOf = Callable[[int], Quote | None]  # conId -> its quote now, None while it does not trade


def is_met(cond: OrderCondition, now: float, quote_of: QuoteOf, time_zone: str) -> bool:
    """Whether one condition holds now. A market condition holds only while its contract
    trades (no quote, no tick to trigger on)."""
    if isinstance(cond, TimeCondition):
        at = parse_time(cond.time, time_zone)
        return now >= at if cond.is_more else now <= at
    if not isinstance(cond, _MARKET):
        return False
    quote = quote_of(cond.con_id)
    if quote is None:
        return False
    if isinstance(cond, PriceCondition):
        return any(_compare(p, cond.price, cond.is_more) for p in _prices(cond, quote))
    if isinstance(cond, VolumeCondition):
        return _compare(quote.volume, cond.volume, cond.is_more)
    if not quote.prev_close:
        return False
    change = (quote.last / quote.prev_close - 1.0) * 100.0
    return _compare(change, cond.change_percent, cond.is_more)


def _prices(cond: PriceCondition, quote: Quote) -> list[float]:
    """The prices a price condition looks at: the last trade, or the side of the quote that
    must cross (the bid to rise above, the ask to fall below), or the midpoint."""
    side = quote.bid if cond.is_more else quote.ask
    if cond.trigger_method in BID_ASK_METHODS:
        return [side]
    if cond.trigger_method == LAST_OR_BID_ASK:
        return [quote.last, side]
    if cond.trigger_method == MIDPOINT:
        return [(quote.bid + quote.ask) / 2.0]
    return [quote.last]


def _compare(value: float, threshold: float, is_more: bool) -> bool:
    eps = 1e-9
    return value >= threshold - eps if is_more else value <= threshold + eps


def all_met(
    conditions: Sequence[OrderCondition], now: float, quote_of: QuoteOf, time_zone: str
) -> bool:
    """The conditions joined as IB joins them: left to right, each condition's conjunction
    ('a' and, 'o' or) linking it to the next, without precedence."""
    if not conditions:
        return True
    result = is_met(conditions[0], now, quote_of, time_zone)
    for prev, cond in itertools.pairwise(conditions):
        met = is_met(cond, now, quote_of, time_zone)
        result = (result and met) if prev.conjunction == AND else (result or met)
    return result
