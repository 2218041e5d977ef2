"""The control API every front-end uses: it returns data, never text, and journals who asked."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, replace
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from engine.domain import EngineState, Fill, Instrument, OptionQuote, Order, expiry_date
from engine.events import CommandEvent, Level, Subscription
from engine.kill_switch import ProgressCallback
from engine.ports import BrokerPort, BrokerRequestError, NoNewsSubscription
from engine.reports import (
    AccountReport,
    CancelReport,
    ChainBusy,
    ChainReport,
    ChainRow,
    ChartData,
    ChartMarker,
    FlattenReport,
    HealthReport,
    JournalEntry,
    NewsReport,
    NoSuchExpiry,
    PnlReport,
    PositionsReport,
    Quote,
    RiskReport,
    ScanBusy,
    ScanReport,
    StatusReport,
    SymbolHealth,
)

if TYPE_CHECKING:
    from engine.engine import Engine

log = logging.getLogger(__name__)

# How long /pause waits for its pause to reach the disk before it answers anyway.
PERSIST_WAIT_SECONDS = 2.0
# /chain: how many expiries and strikes it shows; how long an expiry's quotes may take.
CHAIN_EXPIRIES = 8
CHAIN_STRIKES = 10
CHAIN_QUOTES_SECONDS = 10.0


class CommandRefused(Exception):
    """The engine will not do this now; the message says why, in words for the user."""


class ControlAPI(Protocol):
    """What a front-end (console, Telegram) may ask of the engine."""

    @property
    def mode(self) -> str: ...  # "sim", "paper" or "live"

    async def status(self) -> StatusReport: ...
    async def positions(self) -> PositionsReport: ...
    async def orders(self) -> list[Order]: ...
    async def trades(self, n: int = 10) -> list[Fill]: ...
    async def pnl(self) -> PnlReport: ...
    async def risk(self) -> RiskReport: ...
    async def health(self) -> HealthReport: ...
    async def logs(self, n: int = 20) -> list[JournalEntry]: ...
    async def quote(self, symbol: str) -> Quote: ...  # raises KeyError for an unknown symbol
    async def news(self, symbol: str, n: int = 5) -> NewsReport:
        """Raises KeyError for an unknown symbol, NoNewsSubscription, ConnectionError."""
    async def pause(self, by: str, reason: str = "") -> StatusReport: ...
    async def resume(self, by: str) -> StatusReport: ...
    async def flatten(
        self, by: str, scope: str = "bot", progress: ProgressCallback | None = None
    ) -> FlattenReport: ...
    async def cancel_all(self, by: str, scope: str = "bot") -> CancelReport: ...
    async def chart_data(self, symbol: str | None) -> ChartData: ...
    async def scan_codes(self) -> list[str]: ...  # raises ConnectionError
    async def scan(self, code: str, n: int = 10) -> ScanReport:
        """Raises KeyError for a scan code the broker does not know, ConnectionError, and
        ScanBusy while another scan is being taken."""
    async def option_chain(self, underlying: str, expiry: str | None = None) -> ChainReport:
        """Raises KeyError for a stock without options, NoSuchExpiry, ConnectionError, and
        ChainBusy when asked for an expiry while another expiry's chain is being fetched."""
    async def option_quote(self, option: Instrument) -> OptionQuote:
        """Raises KeyError for an option the broker does not know, ConnectionError."""
    async def account(self) -> AccountReport: ...  # raises ConnectionError
    def subscribe(self, maxsize: int = 1000) -> Subscription: ...


class Control:
    """The engine's control API: what front-ends may ask; each acting call is journaled."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.last_alert_delivered: datetime | None = None
        self._expiry_chain = asyncio.Lock()  # one expiry's chain (~25 requests) at a time
        self._scan = asyncio.Lock()  # one scan (up to 51 requests) at a time

    @property
    def mode(self) -> str:
        return self._engine.mode

    async def _journal_command(self, command: str, by: str, **args: object) -> None:
        engine = self._engine
        await engine.recorder.record_durable(
            Level.INFO, "command", f"{command} by {by}", {"by": by, **args},
            event=CommandEvent(command, by, engine.clock.now(), dict(args)),
        )

    # --- read-only ------------------------------------------------------------------------

    async def status(self) -> StatusReport:
        engine = self._engine
        params = engine.settings.strategy_params
        return StatusReport(
            connection=engine.connection,
            mode=self.mode,
            account=engine.account,
            state=engine.risk.state,
            pause_reason=engine.risk.pause_reason,
            strategy=engine.settings.strategy,
            strategy_params=asdict(params),
            symbols=tuple(engine.symbols),
            last_bar_time={s: st.last_bar.time if st.last_bar else None
                           for s, st in engine.symbols.items()},
            equity=engine.portfolio.net_liquidation(),
            today_pnl=engine.today_pnl(),
            uptime_seconds=engine.uptime(),
            broker_time=engine.clock.now() if engine.clock.synced else None,
        )

    async def positions(self) -> PositionsReport:
        engine = self._engine
        return PositionsReport(engine.portfolio.valued_positions(), tuple(engine.symbols))

    async def orders(self) -> list[Order]:
        return self._engine.orders.working()

    async def trades(self, n: int = 10) -> list[Fill]:
        return await self._engine.journal.recent_fills(limit=n)

    async def pnl(self) -> PnlReport:
        engine = self._engine
        portfolio = engine.portfolio
        return PnlReport(
            realized_today=portfolio.realized_today,
            unrealized=portfolio.unrealized(),
            today=portfolio.today_pnl(),
            commissions_today=portfolio.commissions_today,
            net_liquidation=portfolio.net_liquidation(),
            trading_day=engine.trading_day(),
            per_symbol=dict(portfolio.realized_by_symbol),
        )

    async def risk(self) -> RiskReport:
        engine = self._engine
        limits = engine.risk.limits
        now = engine.clock.now()
        today = engine.today_pnl()
        outside = tuple(
            symbol for symbol in engine.symbols
            if (info := engine.broker.contract(symbol)) and not info.liquid_hours.is_open(now)
        )
        return RiskReport(
            state=engine.risk.state,
            pause_reason=engine.risk.pause_reason,
            max_position=limits.max_position,
            max_notional=limits.max_notional,
            max_daily_loss=limits.max_daily_loss,
            max_orders_per_minute=limits.max_orders_per_minute,
            orders_last_minute=engine.risk.orders_last_minute(now),
            today_pnl=today,
            loss_remaining=limits.max_daily_loss + min(today, 0.0),
            stale_symbols=tuple(s for s in engine.symbols if engine.is_stale(s)),
            outside_hours_symbols=outside,
            recent_refusals=tuple(engine.recent_refusals),
        )

    async def health(self) -> HealthReport:
        engine = self._engine
        now = engine.clock.now()
        symbols = []
        for symbol, state in engine.symbols.items():
            last = state.last_bar.time if state.last_bar else None
            age = (now - last).total_seconds() if last else None
            symbols.append(SymbolHealth(symbol, last, age, engine.is_stale(symbol)))
        lags = sorted(engine.loop_lag_samples) or [0.0]
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        return HealthReport(
            connection=engine.connection,
            connected_since=engine.connected_since,
            disconnects=engine.disconnects,
            symbols=tuple(symbols),
            loop_lag_ms_p99=p99 * 1000,
            loop_lag_ms_max=lags[-1] * 1000,
            last_alert_delivered=self.last_alert_delivered,
        )

    def _connected(self) -> BrokerPort:
        """The broker, for a request that needs the gateway; ConnectionError without it."""
        broker = self._engine.broker
        if not broker.is_connected:
            raise ConnectionError("not connected to the gateway")
        return broker

    async def logs(self, n: int = 20) -> list[JournalEntry]:
        rows = await self._engine.journal.recent_events(limit=n, levels=("warning", "error"))
        return [JournalEntry(row.at, row.level, row.kind, row.message) for row in rows]

    async def quote(self, symbol: str) -> Quote:
        engine = self._engine
        symbol = symbol.upper()
        if not engine.broker.knows(symbol):
            raise KeyError(symbol)
        if not engine.broker.is_connected:
            last = engine.portfolio.last_price.get(symbol)
            return Quote(symbol, None, None, last, None)
        bid, ask, last = await engine.broker.quote(symbol)
        if last is None:
            last = engine.portfolio.last_price.get(symbol)
        return Quote(symbol, bid, ask, last, engine.clock.now())

    async def news(self, symbol: str, n: int = 5) -> NewsReport:
        broker = self._engine.broker
        symbol = symbol.upper()
        if not broker.knows(symbol):
            raise KeyError(symbol)
        self._connected()
        providers = tuple(await broker.news_providers())
        if not providers:
            raise NoNewsSubscription()
        headlines = await broker.headlines(symbol, n, [p.code for p in providers])
        return NewsReport(symbol, tuple(headlines), providers)

    async def scan_codes(self) -> list[str]:
        return await self._connected().scan_codes()

    async def scan(self, code: str, n: int = 10) -> ScanReport:
        code = code.upper()
        if code not in await self.scan_codes():
            raise KeyError(code)
        if self._scan.locked():
            raise ScanBusy()
        async with self._scan:
            return ScanReport(code, tuple(await self._engine.broker.scan(code, n)))

    # --- options ---------------------------------------------------------------------------

    async def option_chain(self, underlying: str, expiry: str | None = None) -> ChainReport:
        if expiry is None:
            return await self._option_chain(underlying, None)
        if self._expiry_chain.locked():
            raise ChainBusy()
        async with self._expiry_chain:
            return await self._option_chain(underlying, expiry)

    async def _option_chain(self, underlying: str, expiry: str | None) -> ChainReport:
        engine = self._engine
        chain, last = await self._connected().option_chain(underlying.upper())
        strikes = near_the_money(chain.strikes, last, CHAIN_STRIKES)
        report = ChainReport(chain.underlying, last, chain.multiplier, chain.exchange, (),
                             strikes)
        if expiry is None:
            today = engine.clock.now().strftime("%Y%m%d")
            upcoming = tuple(e for e in chain.expirations if e >= today)
            return replace(report, expirations=upcoming[:CHAIN_EXPIRIES])
        if expiry not in chain.expirations:
            raise NoSuchExpiry(chain.underlying, expiry, nearest_expiries(chain.expirations,
                                                                            expiry))
        options = [
            Instrument.option(chain.underlying, expiry, strike, right)
            for strike in strikes for right in ("C", "P")
        ]
        report = replace(report, expirations=(expiry,), expiry=expiry)
        try:
            quotes = await asyncio.wait_for(
                engine.broker.option_quotes(options), CHAIN_QUOTES_SECONDS
            )
        except (TimeoutError, BrokerRequestError) as exc:  # the strikes alone, then
            log.warning("no quotes for %s %s's chain: %s", chain.underlying, expiry, exc)
            return report
        rows = tuple(
            ChainRow(strike, quotes[2 * i], quotes[2 * i + 1]) for i, strike in enumerate(strikes)
        )
        return replace(report, rows=rows)

    async def option_quote(self, option: Instrument) -> OptionQuote:
        quote = (await self._connected().option_quotes([option]))[0]
        if quote is None:
            raise KeyError(option.symbol)
        return quote

    async def account(self) -> AccountReport:
        summary = await self._connected().account_summary()
        return AccountReport(self._engine.account, summary, self._engine.clock.now())

    async def chart_data(self, symbol: str | None) -> ChartData:
        engine = self._engine
        if symbol is None:
            curve = await engine.journal.equity_curve()
            return ChartData(None, tuple(t for t, _ in curve), tuple(v for _, v in curve))
        state = engine.symbols.get(symbol.upper())
        if state is None:
            raise KeyError(symbol)
        bars = list(state.bars)
        rows = list(state.indicators)[-len(bars):] if bars else []
        names = sorted({name for row in rows for name in row})
        indicators = {name: tuple(row.get(name) for row in rows) for name in names}
        since = bars[0].time if bars else None
        fills = await engine.journal.recent_fills(limit=500, since=since)
        markers = tuple(
            ChartMarker(f.time, f.price, f.side.value) for f in fills if f.symbol == state.symbol
        )
        return ChartData(
            state.symbol,
            tuple(bar.time for bar in bars),
            tuple(bar.close for bar in bars),
            indicators,
            markers,
            opens=tuple(bar.open for bar in bars),
            highs=tuple(bar.high for bar in bars),
            lows=tuple(bar.low for bar in bars),
            volumes=tuple(bar.volume for bar in bars),
        )

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        return self._engine.bus.subscribe(maxsize)

    # --- acting ---------------------------------------------------------------------------

    async def pause(self, by: str, reason: str = "") -> StatusReport:
        """Pause at once; returns once the pause is on disk (so a restart resumes it), or
        after PERSIST_WAIT_SECONDS if the disk cannot be written: paused in memory all the
        same, and persisted when the disk allows."""
        engine = self._engine
        engine.tasks.aside(self._journal_command("pause", by, reason=reason))
        if engine.risk.state is not EngineState.HALTED:
            why = reason or f"paused by {by}"
            engine.risk.pause(why)
            persisted = engine.tasks.aside(engine.trading_state.persist(EngineState.PAUSED,
                                                                        why, by))
            done, _ = await asyncio.wait({persisted}, timeout=PERSIST_WAIT_SECONDS)
            if not done:
                log.error("the pause by %s is not on disk yet (journal busy or full); paused "
                          "in memory, persisted when the disk allows", by)
        return await self.status()

    async def resume(self, by: str) -> StatusReport:
        """Lift a pause; refused (CommandRefused) while a flatten runs."""
        engine = self._engine
        if engine.kill_switch.busy:
            engine.tasks.aside(self._journal_command("resume", by, refused="flatten in progress"))
            raise CommandRefused("flatten in progress: /resume changes nothing until it is done")
        if engine.fatal is None:
            if engine.position_audit.paused_by_audit():
                # The operator accepts the positions as the broker has them.
                engine.tasks.aside(engine.position_audit.acknowledge())
            # In memory at once, before anything awaits, so a /flatten that starts from here
            # on pauses after it; persisted in order with that flatten's pause.
            engine.risk.resume()
            engine.tasks.aside(engine.trading_state.persist(EngineState.RUNNING, "", by))
        await self._journal_command("resume", by)
        return await self.status()

    async def cancel_all(self, by: str, scope: str = "bot") -> CancelReport:
        """Cancel the bot's (or the account's) orders; waits for a running flatten first, so
        it can never cancel the kill switch's own closing orders."""
        _check_scope(scope)
        # Act first, as the kill switch does: a journal that cannot be written must not stop it.
        self._engine.tasks.aside(self._journal_command("cancel_all", by, scope=scope))
        return await self._engine.kill_switch.cancel_all(scope)

    async def flatten(
        self, by: str, scope: str = "bot", progress: ProgressCallback | None = None
    ) -> FlattenReport:
        """Pause; cancel the orders; close the positions with market orders; wait for fills
        (engine/kill_switch.py). A second call while one runs waits for it."""
        _check_scope(scope)
        # Act first: a journal that cannot be written must neither stop nor slow the kill
        # switch, so its records are written on the side.
        self._engine.tasks.aside(self._journal_command("flatten", by, scope=scope))
        return await self._engine.kill_switch.flatten(by, scope, progress)


def _check_scope(scope: str) -> None:
    if scope not in ("bot", "account"):
        raise ValueError(f"scope must be 'bot' or 'account', not {scope!r}")


def near_the_money(strikes: tuple[float, ...], price: float | None, n: int) -> tuple[float, ...]:
    """The `n` strikes nearest `price`, ascending (the middle `n` without a price)."""
    if len(strikes) <= n:
        return strikes
    if price is None:
        start = (len(strikes) - n) // 2
        return strikes[start:start + n]
    nearest = sorted(range(len(strikes)), key=lambda i: (abs(strikes[i] - price), i))[:n]
    return tuple(strikes[i] for i in sorted(nearest))


def nearest_expiries(expirations: tuple[str, ...], expiry: str, n: int = 3) -> tuple[str, ...]:
    """The `n` expiries (YYYYMMDD) closest to `expiry` (which may be no date at all), by date."""
    def days(text: str) -> int:
        day = expiry_date(text)
        return day.toordinal() if day is not None else 0
    target = days(expiry)
    return tuple(sorted(sorted(expirations, key=lambda e: abs(days(e) - target))[:n]))
