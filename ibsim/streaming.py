"""The market driver: advances through 5-second steps as the simulated clock moves and streams
real-time bars, keepUpToDate updates and ticks to subscribers, then lets the broker match."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections.abc import Callable
from functools import lru_cache
from zoneinfo import ZoneInfo

from . import messages as msg
from .bars import DAY, MONTH, WEEK, BarSize, RawBar
from .clients import Subscriber
from .contracts import ContractSpec
from .framing import fmt_float
from .hooks import BarEmitted
from .market import Market, Quote
from .pricepath import STEP
from .session import ClientSession
from .state import ServerState

# Tick types for live (1) and delayed (3, 4) market data.
_LIVE = {"bid": 1, "ask": 2, "last": 4, "high": 6, "low": 7, "close": 9, "open": 14,
         "volume": 8, "timestamp": 45}  # fmt: skip
_DELAYED = {"bid": 66, "ask": 67, "last": 68, "high": 72, "low": 73, "close": 75, "open": 76,
            "volume": 74, "timestamp": 88}  # fmt: skip
# Beyond this many idle steps the driver jumps instead of walking (nothing can happen).
_IDLE_JUMP = 64


def _price(spec: ContractSpec, ticks: float) -> str:
    return fmt_float(round(ticks * spec.min_tick, spec.price_digits + 1))


def bar_row(
    market: Market, spec: ContractSpec, bar: RawBar, what: str, format_date: int, intraday: bool
) -> msg.BarRow:
    """A bar as the wire fields (date, open, high, low, close, volume, WAP, barCount)."""
    if not intraday:
        assert bar.label is not None
        date = f"{bar.label:%Y%m%d}"
    elif format_date == 2:
        date = str(int(bar.start))
    else:
        date = msg.ib_time(bar.start, spec.time_zone)
    shift = market.shift(spec, what)
    o, h, lo, c = (_price(spec, x + shift) for x in (bar.open, bar.high, bar.low, bar.close))
    if what != "TRADES":
        return (date, o, h, lo, c, "-1", "-1", "-1")
    wap = fmt_float(round(bar.wap * spec.min_tick, spec.price_digits + 2))
    return (date, o, h, lo, c, fmt_float(round(bar.volume, 8)), wap, str(bar.count))


def quote_ticks(req_id: int, spec: ContractSpec, q: Quote, data_type: int) -> list[list[str]]:
    t = _DELAYED if data_type in (3, 4) else _LIVE
    f = fmt_float

    def p(x: float) -> str:
        return fmt_float(round(x, spec.price_digits + 1))

    delayed = 70 if data_type in (3, 4) else 0  # delayed option computations: 80..83
    computations = [
        msg.tick_option_computation(req_id, tick_type + delayed, g) for tick_type, g in q.greeks
    ]
    return [
        msg.tick_price(req_id, t["bid"], p(q.bid), f(q.bid_size), 1),
        msg.tick_price(req_id, t["ask"], p(q.ask), f(q.ask_size), 1),
        msg.tick_price(req_id, t["last"], p(q.last), f(q.last_size)),
        msg.tick_size(req_id, t["volume"], f(round(q.volume, 8))),
        msg.tick_price(req_id, t["high"], p(q.high), "0"),
        msg.tick_price(req_id, t["low"], p(q.low), "0"),
        msg.tick_price(req_id, t["close"], p(q.prev_close), "0"),
        msg.tick_price(req_id, t["open"], p(q.open), "0"),
        msg.tick_string(req_id, t["timestamp"], str(int(q.time))),
        *computations,
    ]


def bar_key(
    market: Market, spec: ContractSpec, size: BarSize, bar: RawBar, rth: bool = False
) -> object:
    """Which bar of ``size`` the (step or partial) bar starting at ``bar.start`` is in: its start
    time, trade date, (year, week) or (year, month)."""
    session = market.session_at(spec, bar.start, rth)
    if session is None:
        return None
    if size.intraday:
        offset = _utc_offset(spec.time_zone, session.start)
        aligned = math.floor((bar.start + offset) / size.seconds) * size.seconds - offset
        return max(aligned, session.start)
    if size.period == DAY:
        return session.trade_date
    if size.period == WEEK:
        return session.trade_date.isocalendar()[:2]
    assert size.period == MONTH
    return (session.trade_date.year, session.trade_date.month)


@lru_cache(maxsize=4096)
def _utc_offset(time_zone: str, session_start: float) -> float:
    """Seconds the exchange's clock is ahead of UTC when a session starts (intraday bars are
    aligned on the exchange's clock)."""
    local = dt.datetime.fromtimestamp(session_start, ZoneInfo(time_zone))
    return local.utcoffset().total_seconds()  # type: ignore[union-attr]


def _step_bar(spec: ContractSpec, k: int, o: int, h: int, lo: int, c: int, v: float) -> RawBar:
    return RawBar(k * STEP, (k + 1) * STEP, o, h, lo, c, v, (h + lo + c) / 3.0, 1)


class MarketStreamer:
    """Walks the simulated clock step by step; one instance per gateway."""

    def __init__(self, state: ServerState, step_done: Callable[[float], None]) -> None:
        """``step_done(t)`` runs after each step (ending at ``t``) was streamed and matched."""
        self.state = state
        self._step_done = step_done
        self.next_k = int(state.clock.now() // STEP)
        self._timer: asyncio.TimerHandle | None = None
        self._running = False

    def start(self) -> None:
        self._running = True
        self.state.clock.on_change(self.kick)
        self.kick()

    def stop(self) -> None:
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def kick(self) -> None:
        """Catch up with the clock now and re-arm the timer (the clock may have jumped)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._running:
            self._run()

    def _run(self) -> None:
        self._timer = None
        clock = self.state.clock
        target = int(clock.now() // STEP)
        while self.next_k < target:
            if target - self.next_k > _IDLE_JUMP and self._idle():
                self.next_k = target
                break
            self._process(self.next_k)
            self.next_k += 1
        delay = clock.wall_delay((self.next_k + 1) * STEP)
        if delay is not None and self._running:
            self._timer = asyncio.get_running_loop().call_later(delay, self._run)

    def _idle(self) -> bool:
        return (
            not self.state.clients.market_subscribers()
            and not self.state.broker.working_con_ids()
            and not self.state.broker.has_conditional()
        )

    def _process(self, k: int) -> None:
        state = self.state
        t0, t1 = k * STEP, (k + 1) * STEP
        state.broker.expire(t1)
        index = state.clients.market_subscribers()
        con_ids = set(index) | set(state.broker.working_con_ids())
        for con_id in sorted(con_ids):
            spec = state.universe.get(con_id)
            if spec is None or not state.market.is_open(spec, t0):
                continue
            bar = state.market.step(spec, k)
            if bar is None:
                continue
            subs = index.get(con_id)
            if subs:
                self._emit(spec, k, _step_bar(spec, k, bar.open, bar.high, bar.low, bar.close,
                                              bar.volume), subs)  # fmt: skip
            state.broker.on_step(spec, k)
        state.broker.check_conditions(t1)
        self._step_done(t1)

    def _emit(self, spec: ContractSpec, k: int, step: RawBar, subs: list[Subscriber]) -> None:
        state = self.state
        market = state.market
        blocked = state.faults.data_blocked(spec.con_id)
        t0 = k * STEP
        in_rth: bool | None = None
        quote: Quote | None = None
        per_session: dict[ClientSession, list[list[str]]] = {}
        emitted: list[BarEmitted] = []
        for session, kind, req_id, sub in subs:
            if k <= sub.last_k:
                continue
            sub.last_k = k
            if kind == "mkt":
                if blocked:
                    continue
                if quote is None:
                    quote = market.quote(spec, t0 + STEP)
                per_session.setdefault(session, []).extend(
                    quote_ticks(req_id, spec, quote, sub.data_type)
                )
                continue
            if sub.rth:
                if in_rth is None:
                    in_rth = market.is_open(spec, t0, True)
                if not in_rth:
                    continue
            if kind == "rt":
                if blocked:
                    continue
                row = bar_row(market, spec, step, sub.what, 2, True)
                per_session.setdefault(session, []).append(msg.realtime_bar(req_id, int(t0), row))
                emitted.append(self._record(session, req_id, spec, "realtime", t0))
            else:
                key = bar_key(market, spec, sub.size, step, sub.rth)
                if sub.bar is not None and sub.key == key:
                    sub.bar = sub.bar.merge(step)
                else:
                    sub.bar = self._new_bar(spec, sub.size, step, key, sub.rth)
                    sub.key = key
                if blocked:
                    continue
                row = bar_row(market, spec, sub.bar, sub.what, sub.format_date, sub.size.intraday)
                per_session.setdefault(session, []).append(msg.historical_data_update(req_id, row))
                emitted.append(self._record(session, req_id, spec, "keepUpToDate", sub.bar.start))
        for session, messages in per_session.items():
            session.write_many(messages)
        for record in emitted:
            state.hooks.bar_emitted.emit(record)

    def _record(self, session, req_id: int, spec: ContractSpec, kind: str, t: float) -> BarEmitted:
        return BarEmitted(
            time.perf_counter(), self.state.clock.now(), session.client_id or 0, req_id,
            spec.symbol, kind, t,
        )  # fmt: skip

    def _new_bar(self, spec, size: BarSize, step: RawBar, key, rth: bool) -> RawBar:
        bar = RawBar(step.start, step.end, step.open, step.high, step.low, step.close,
                     step.volume, step.wap, step.count)  # fmt: skip
        if size.intraday:
            bar.start = float(key)
            return bar
        session = self.state.market.session_at(spec, step.start, rth)
        assert session is not None
        bar.start, bar.label = session.start, session.trade_date
        return bar
