"""The contract universe: what the simulated exchange lists, and how requests match it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from .sessions import SCHEDULES, Schedule


@dataclass(slots=True)
class ContractRef:
    """A contract as the client describes it (the C12 block); empty fields are wildcards."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade_date: str = ""
    strike: float | None = None
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""


@dataclass(slots=True)
class ContractSpec:
    """One listed instrument and the parameters of its simulated market."""

    symbol: str
    sec_type: str  # STK, CASH, CRYPTO, FUT
    exchange: str  # default routing exchange (SMART, IDEALPRO, PAXOS, CME)
    primary_exchange: str
    currency: str
    con_id: int
    min_tick: float
    long_name: str
    schedule_name: str
    base_price: float
    daily_volume: float  # typical volume of one session
    daily_vol: float = 0.02  # volatility of the log price over one day
    spread_ticks: int = 1
    local_symbol: str = ""
    trading_class: str = ""
    multiplier: str = ""
    last_trade_date: str = ""
    contract_month: str = ""
    valid_exchanges: str = ""
    order_types: str = "LMT,MKT,STP,STP LMT,TRAIL"
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    stock_type: str = ""
    min_size: float = 1.0
    size_increment: float = 1.0
    market_rule_id: int = 26
    # Options (sec_type OPT): the strike, "C" or "P", the underlying, and the expiry's close.
    strike: float = 0.0
    right: str = ""
    under_con_id: int = 0
    under_symbol: str = ""
    under_sec_type: str = ""
    expires_at: float = 0.0  # simulated epoch of the last trading moment; 0: by the date
    price_digits: int = field(init=False)

    def __post_init__(self) -> None:
        self.local_symbol = self.local_symbol or self.symbol
        self.trading_class = self.trading_class or self.symbol
        self.valid_exchanges = self.valid_exchanges or self.exchange
        self.price_digits = max(0, len(f"{self.min_tick:.10f}".rstrip("0").split(".")[1]))

    @property
    def schedule(self) -> Schedule:
        return SCHEDULES[self.schedule_name]

    @property
    def time_zone(self) -> str:
        return self.schedule.tz

    @property
    def multiplier_value(self) -> float:
        return float(self.multiplier) if self.multiplier else 1.0

    def expired(self, t: float) -> bool:
        """Past its last trading day at simulated epoch ``t`` (in the exchange's time zone);
        an option from its expiry's close on."""
        if self.expires_at:
            return t >= self.expires_at
        if not self.last_trade_date:
            return False
        day = dt.datetime.fromtimestamp(t, ZoneInfo(self.time_zone)).date()
        return f"{day:%Y%m%d}" > self.last_trade_date

    def round_price(self, price: float) -> float:
        return round(round(price / self.min_tick) * self.min_tick, self.price_digits)

    def on_tick_grid(self, price: float) -> bool:
        ticks = price / self.min_tick
        return abs(ticks - round(ticks)) < 1e-6


def _stock(
    symbol: str,
    con_id: int,
    primary: str,
    price: float,
    name: str,
    volume: float,
    industry: str = "Technology",
) -> ContractSpec:
    listing = {"NASDAQ": "ISLAND", "NYSE": "NYSE", "ARCA": "ARCA"}[primary]
    return ContractSpec(
        symbol=symbol,
        sec_type="STK",
        exchange="SMART",
        primary_exchange=primary,
        currency="USD",
        con_id=con_id,
        min_tick=0.01,
        long_name=name,
        schedule_name="us_equity",
        base_price=price,
        daily_volume=volume,
        daily_vol=0.018,
        trading_class="NMS" if primary == "NASDAQ" else symbol,
        valid_exchanges=f"SMART,AMEX,NYSE,CBOE,ARCA,BATS,EDGX,IEX,{listing},NASDAQ",
        industry=industry,
        stock_type="ETF" if primary == "ARCA" else "COMMON",
    )


# Real IB conIds where known, so logs look familiar.
_CATALOG: dict[str, ContractSpec] = {
    s.symbol: s
    for s in (
        _stock("AAPL", 265598, "NASDAQ", 190.0, "APPLE INC", 50e6),
        _stock("MSFT", 272093, "NASDAQ", 410.0, "MICROSOFT CORP", 22e6),
        _stock("NVDA", 4815747, "NASDAQ", 120.0, "NVIDIA CORP", 250e6),
        _stock("TSLA", 76792991, "NASDAQ", 240.0, "TESLA INC", 90e6, "Consumer, Cyclical"),
        _stock("AMZN", 3691937, "NASDAQ", 180.0, "AMAZON.COM INC", 40e6, "Communications"),
        _stock("SPY", 756733, "ARCA", 520.0, "SPDR S&P 500 ETF TRUST", 60e6, "Funds"),
        _stock("QQQ", 320227571, "NASDAQ", 440.0, "INVESCO QQQ TRUST SERIES 1", 35e6, "Funds"),
        _stock("IBM", 8314, "NYSE", 170.0, "INTL BUSINESS MACHINES CORP", 4e6),
        _stock("KO", 8894, "NYSE", 62.0, "COCA-COLA CO/THE", 12e6, "Consumer, Non-cyclical"),
        _stock("JPM", 1520593, "NYSE", 200.0, "JPMORGAN CHASE & CO", 9e6, "Financial"),
        ContractSpec(
            symbol="EUR",
            sec_type="CASH",
            exchange="IDEALPRO",
            primary_exchange="",
            currency="USD",
            con_id=12087792,
            min_tick=0.00005,
            long_name="European Monetary Union Euro",
            schedule_name="fx",
            base_price=1.0850,
            daily_volume=2e9,
            daily_vol=0.005,
            spread_ticks=2,
            local_symbol="EUR.USD",
            trading_class="EUR.USD",
            valid_exchanges="IDEALPRO",
            order_types="LMT,MKT,STP,STP LMT,TRAIL",
            category="Major",
            min_size=1.0,
            size_increment=1.0,
            market_rule_id=239,
        ),
        ContractSpec(
            symbol="BTC",
            sec_type="CRYPTO",
            exchange="PAXOS",
            primary_exchange="",
            currency="USD",
            con_id=479624278,
            min_tick=0.25,
            long_name="Bitcoin",
            schedule_name="crypto",
            base_price=65000.0,
            daily_volume=4000.0,
            daily_vol=0.03,
            spread_ticks=4,
            local_symbol="BTC.USD",
            trading_class="BTC",
            valid_exchanges="PAXOS",
            order_types="LMT,MKT,STP,STP LMT",
            min_size=0.0001,
            size_increment=0.0001,
            market_rule_id=3362,
        ),
    )
}

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "SPY", "QQQ", "EURUSD", "BTC", "ES")

_FUTURE_MONTH_CODES = {3: "H", 6: "M", 9: "U", 12: "Z"}


def third_friday(year: int, month: int) -> dt.date:
    first = dt.date(year, month, 1)
    offset = (4 - first.weekday()) % 7
    return first + dt.timedelta(days=offset + 14)


def _quarterlies(today: dt.date):
    """(year, month, expiry) of every quarterly contract not yet expired on ``today``."""
    year, month = today.year, today.month
    while True:
        if month in _FUTURE_MONTH_CODES:
            expiry = third_friday(year, month)
            if expiry >= today:
                yield year, month, expiry
        month += 1
        if month > 12:
            year, month = year + 1, 1


def front_future(symbol: str, today: dt.date) -> ContractSpec:
    """The front quarterly equity-index future (ES or NQ style) as of ``today``: the nearest
    expiry more than 7 days away (the roll a week before the third-Friday expiry)."""
    return next(
        spec for spec in future_chain(symbol, today, 3)
        if dt.date.fromisoformat(spec.last_trade_date) - today > dt.timedelta(days=7)
    )


def future_chain(symbol: str, today: dt.date, count: int = 4) -> list[ContractSpec]:
    """The next ``count`` quarterly contracts not yet expired on ``today``, nearest first, as
    IB lists them for a future asked for without an expiry. Each has its own conId and price
    (the later months a little dearer, as a carry)."""
    out = []
    for index, (year, month, expiry) in enumerate(_quarterlies(today)):
        if index == count:
            break
        out.append(_future(symbol, year, month, expiry))
    return out


def _future(symbol: str, year: int, month: int, expiry: dt.date) -> ContractSpec:
    code = _FUTURE_MONTH_CODES[month]
    price, name = {"ES": (5300.0, "E-mini S&P 500"), "NQ": (18500.0, "E-mini Nasdaq-100")}.get(
        symbol, (5300.0, f"{symbol} future")
    )
    quarter = max(year - 2020, 0) * 4 + month // 3  # later months a little dearer
    return ContractSpec(
        symbol=symbol,
        sec_type="FUT",
        exchange="CME",
        primary_exchange="",
        currency="USD",
        con_id=600_000_000 + year * 100 + month + zlib.crc32(symbol.encode()) % 1000 * 10_000,
        min_tick=0.25,
        long_name=name,
        schedule_name="cme_equity",
        base_price=round(price * (1 + 0.001 * quarter) * 4) / 4,
        daily_volume=1.5e6,
        daily_vol=0.012,
        local_symbol=f"{symbol}{code}{year % 10}",
        trading_class=symbol,
        multiplier="50" if symbol == "ES" else "20",
        last_trade_date=f"{expiry:%Y%m%d}",
        contract_month=f"{year}{month:02d}",
        valid_exchanges="CME,QBALGO",
        order_types="LMT,MKT,STP,STP LMT,TRAIL",
        market_rule_id=67,
    )


def generic_stock(symbol: str) -> ContractSpec:
    """A made-up NYSE stock for symbols not in the catalog (deterministic from the symbol)."""
    h = zlib.crc32(symbol.encode())
    return _stock(symbol, 900_000_000 + h % 90_000_000, "NYSE", 20.0 + h % 300, symbol, 5e6)


def build_universe(symbols: Iterable[str], today: dt.date) -> list[ContractSpec]:
    """Contract specs for the given symbols.

    "EURUSD" means the EUR.USD pair and "ES" the chain of quarterly futures (the front first,
    so that "ES" alone names it in the simulator's own API); unknown symbols become made-up
    NYSE stocks."""
    out = []
    for raw in symbols:
        sym = raw.strip().upper()
        if not sym:
            continue
        if sym in ("EURUSD", "EUR.USD", "EUR"):
            out.append(_copy(_CATALOG["EUR"]))
        elif sym in ("ES", "NQ"):
            front = front_future(sym, today)
            chain = future_chain(sym, today)
            out.append(front)
            out.extend(spec for spec in chain if spec.con_id != front.con_id)
        elif sym in _CATALOG:
            out.append(_copy(_CATALOG[sym]))
        else:
            out.append(generic_stock(sym))
    return out


def _copy(spec: ContractSpec) -> ContractSpec:
    # Specs are mutable (tests tune volume), so the catalog hands out copies.
    return dataclasses.replace(spec)


class Universe:
    """The listed contracts, looked up by conId or matched against a client's description."""

    def __init__(self, specs: Iterable[ContractSpec]) -> None:
        self.specs = list(specs)
        self.by_con_id = {s.con_id: s for s in self.specs}
        if len(self.by_con_id) != len(self.specs):
            raise ValueError("duplicate conId in the contract universe")
        # Option chains are listed beside the rest: found by conId or by an OPT request,
        # never by iterating the universe (thousands of them would swamp scans and searches).
        self.options: dict[int, list[ContractSpec]] = {}  # underlying conId -> its chain

    def __iter__(self):
        return iter(self.specs)

    def add_options(self, under_con_id: int, chain: Iterable[ContractSpec]) -> None:
        chain = list(chain)
        for spec in chain:
            if spec.con_id in self.by_con_id:
                raise ValueError(f"duplicate conId {spec.con_id} in the contract universe")
            self.by_con_id[spec.con_id] = spec
        self.options.setdefault(under_con_id, []).extend(chain)

    def option_chain(self, under_con_id: int) -> list[ContractSpec]:
        return self.options.get(under_con_id, [])

    def get(self, con_id: int) -> ContractSpec | None:
        return self.by_con_id.get(con_id)

    def by_symbol(self, symbol: str) -> ContractSpec | None:
        for s in self.specs:
            if s.symbol == symbol or s.local_symbol == symbol:
                return s
        return None

    def match(self, ref: ContractRef) -> list[ContractSpec]:
        """Every listed contract compatible with the description (empty fields match all)."""
        if ref.con_id:
            spec = self.by_con_id.get(ref.con_id)
            return [spec] if spec is not None else []
        if ref.sec_type == "OPT":
            return self._match_options(ref)
        found = []
        for s in self.specs:
            if ref.symbol and ref.symbol.upper() not in (s.symbol, s.local_symbol.upper()):
                continue
            if not ref.symbol and not ref.local_symbol:
                continue
            if ref.local_symbol and ref.local_symbol.upper() != s.local_symbol.upper():
                continue
            if ref.sec_type and ref.sec_type != s.sec_type:
                continue
            if ref.currency and ref.currency != s.currency:
                continue
            exchanges = s.valid_exchanges.split(",")
            if ref.exchange and ref.exchange not in exchanges and ref.exchange != s.exchange:
                continue
            if ref.primary_exchange and ref.primary_exchange not in (
                s.primary_exchange,
                *exchanges,
            ):
                continue
            if ref.last_trade_date and not (
                s.last_trade_date.startswith(ref.last_trade_date)
                or s.contract_month == ref.last_trade_date
            ):
                continue
            if ref.multiplier and s.multiplier and float(ref.multiplier) != float(s.multiplier):
                continue
            found.append(s)
        return found

    def _match_options(self, ref: ContractRef) -> list[ContractSpec]:
        """Options as IB matches them: every given field must agree, the rest are wildcards."""
        right = {"CALL": "C", "PUT": "P"}.get(ref.right.upper(), ref.right.upper())
        found = []
        for chain in self.options.values():
            for s in chain:
                if ref.symbol and ref.symbol.upper() != s.symbol:
                    continue
                if not ref.symbol and not ref.local_symbol:
                    continue
                if ref.local_symbol and ref.local_symbol.upper() != s.local_symbol.upper():
                    continue
                if ref.last_trade_date and not s.last_trade_date.startswith(ref.last_trade_date):
                    continue
                if ref.strike and abs(ref.strike - s.strike) > 1e-6:
                    continue
                if right and right != s.right:
                    continue
                if ref.trading_class and ref.trading_class != s.trading_class:
                    continue
                if ref.currency and ref.currency != s.currency:
                    continue
                if ref.exchange and ref.exchange not in s.valid_exchanges.split(","):
                    continue
                if ref.multiplier and float(ref.multiplier) != float(s.multiplier):
                    continue
                found.append(s)
        return found

    def resolve(self, ref: ContractRef) -> ContractSpec | None:
        """The single contract an order or data request refers to, or None."""
        found = self.match(ref)
        return found[0] if len(found) == 1 else None
