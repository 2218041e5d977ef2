"""The position audit: what the broker holds, explained by the journal, or trading pauses.

After every reconciliation, for each symbol the bot trades: the broker's position must equal
the position at the baseline plus every fill journaled since. A difference no journaled fill
explains (a fill the bot never heard of, a trade by hand in the bot's symbol, a broker that lost
or invented something) fails closed: journaled, alerted with the numbers, PAUSED with that
reason (exits and /flatten still work), shown in /status until an operator acts. /resume
acknowledges it: the positions as they are become the new baseline.

The broker's executions are checked the other way too: a fill the journal has and the broker's
list does not show fails closed the same way. IB lists the current day's executions only, so
the list vouches for nothing older than its own first execution: what is judged is a journaled
fill executed between the first and the last execution the broker shows (and journaled after
the baseline's fill mark, so an acknowledged one is not judged again).

The broker's positions are the connection's running copy (updated by every position message;
no request that could hang). A symbol with an order still working or of unknown outcome is not
judged (its fills may be on their way), and a difference is looked at twice,
AUDIT_RECHECK_SECONDS apart, so a fill racing a position message is not taken for one. The
baseline is kept in the journal's state: the broker's positions at a settled moment when the
audit first ran (or was acknowledged), and the journal's fill mark then.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from engine.clock import BrokerClock
from engine.domain import EngineState, Fill, Instrument, Settlement
from engine.events import Level, OptionSettledEvent, RiskEvent, RiskKind
from engine.journal import Journal
from engine.journal_rows import state_stmt
from engine.option_expiry import settle_expired
from engine.orders import OrderManager
from engine.ports import BrokerPort
from engine.recorder import Recorder
from engine.risk import RiskManager
from engine.trading_state import TradingState

log = logging.getLogger(__name__)

AUDIT_RECHECK_SECONDS = 2.0  # wall seconds
BASELINE_TRIES = 20
BASELINE_RETRY_SECONDS = 0.25
BASELINE_KEY = "position_baseline"
PAUSE_PREFIX = "positions differ from the journal"


@dataclass(frozen=True, slots=True)
class PositionDifference:
    symbol: str
    broker: float  # what the broker holds
    journal: float  # what the baseline and the journaled fills add up to

    def __str__(self) -> str:
        return f"{self.symbol}: broker {self.broker:g}, journal {self.journal:g}"


@dataclass(frozen=True, slots=True)
class Baseline:
    positions: dict[str, float]
    fill_mark: int


class PositionAudit:
    def __init__(
        self,
        journal: Journal,
        broker: BrokerPort,
        orders: OrderManager,
        risk: RiskManager,
        trading_state: TradingState,
        recorder: Recorder,
        clock: BrokerClock,
        traded: Collection[str],
        awaiting_position: Callable[[str], bool],
        recheck_seconds: float = AUDIT_RECHECK_SECONDS,
        instruments: Mapping[str, Instrument] | None = None,
        multiplier: Callable[[str], float] = lambda symbol: 1.0,
        price: Callable[[str], float | None] = lambda symbol: None,
    ) -> None:
        self._journal = journal
        self._broker = broker
        self._orders = orders
        self._risk = risk
        self._trading_state = trading_state
        self._recorder = recorder
        self._clock = clock
        self._traded = traded
        self._awaiting_position = awaiting_position  # a fill the positions may not show yet
        self._recheck_seconds = recheck_seconds
        self._instruments = instruments or {}  # by symbol: an option's expiry and underlying
        self._multiplier = multiplier  # a symbol's contract multiplier
        self._price = price  # a symbol's last price
        self.flat_at: dict[str, datetime] = {}  # an option seen going flat at the broker: when
        self._lock = asyncio.Lock()

    async def check(self) -> list[PositionDifference]:
        """Compare; fail closed on a difference seen twice. Returns what failed it. Without
        the broker (a drop meanwhile) it says nothing: the next reconciliation checks."""
        try:
            return await self._check()
        except (ConnectionError, TimeoutError) as exc:
            log.warning("position audit not done: %s", exc)
            return []

    async def _check(self) -> list[PositionDifference]:
        async with self._lock:
            baseline = await self._baseline()
            if baseline is None:
                return []  # set at the first connect (ensure_baseline)
            if not await self._differences(baseline):
                return []
            await asyncio.sleep(self._recheck_seconds)  # a fill racing the snapshot lands
            differences = await self._differences(baseline)
            settlements, differences = settle_expired(
                differences, self._instruments, self._clock.now(), self._multiplier,
                self._price, self.flat_at,
            )
            if settlements:
                await self._settle(baseline, settlements)
            if differences:
                await self._fail_closed(differences)
            return differences

    async def ensure_baseline(self) -> None:
        """At a connect's set-up, before anything trades: the first run takes the broker's
        positions as they are (a bot upgraded to the audit accepts what it holds)."""
        async with self._lock:
            if await self._baseline() is None:
                await self._set_baseline(settled=False)

    async def acknowledge(self) -> None:
        """An operator resumed after a difference: the positions as they are now are right."""
        async with self._lock:
            await self._set_baseline()

    async def unexplained_executions(self, fills: list[Fill]) -> None:
        """Executions with the bot's orderRef of orders the journal never had: fail closed
        (they are journaled, so the positions add up; what placed them is the question)."""
        described = "; ".join(_described(f) for f in fills)
        reason = (f"{PAUSE_PREFIX}: executions of orders the journal never had: {described} "
                  "(/resume accepts them, /flatten closes)")
        async with self._lock:
            await self._pause(reason, {"executions": [[f.exec_id, f.order_ref, f.symbol,
                                                        f.side.value, f.quantity]
                                                       for f in fills]})

    async def missing_executions(self, shown: Collection[Fill]) -> list[Fill]:
        """Journaled fills the broker's executions should list and do not: fail closed.
        `shown` is the broker's list (empty while IB's servers are lost: nothing judged)."""
        async with self._lock:
            baseline = await self._baseline()
            if baseline is None or not shown:
                return []
            await self._recorder.writer.flush()
            times = [fill.time for fill in shown]
            listed = {fill.exec_id for fill in shown}
            missing = [fill for fill in await self._journal.fills_between(
                           min(times), max(times), baseline.fill_mark)
                       if fill.exec_id not in listed]
            if missing:
                described = "; ".join(_described(f) for f in missing)
                reason = (f"{PAUSE_PREFIX}: journaled fills the broker does not show: "
                          f"{described} (/resume accepts, /flatten closes)")
                await self._pause(reason, {"missing": [[f.exec_id, f.order_ref, f.symbol,
                                                        f.side.value, f.quantity]
                                                       for f in missing]})
            return missing

    def is_option(self, symbol: str) -> bool:
        instrument = self._instruments.get(symbol)
        return instrument is not None and instrument.sec_type == "OPT"

    def option_held(self, symbol: str) -> None:
        self.flat_at.pop(symbol, None)

    async def option_went_flat(self, symbol: str) -> None:
        """An option of the bot's went flat at the broker: when, by the broker's clock (an
        expiry settles at the close; a close by hand earlier is no settlement). The first
        time counts until it is held again: a later report of the same flat changes nothing."""
        if symbol in self.flat_at:
            return  # known: no request for a time that would not count
        try:
            at = await self._broker.current_time()
        except (ConnectionError, TimeoutError):
            at = self._clock.now()
        self.flat_at.setdefault(symbol, at)

    async def _settle(self, baseline: Baseline, settlements: list[Settlement]) -> None:
        """Options the broker settled at expiry: the baseline takes them out (and what an
        exercise or assignment delivered in), told once each."""
        positions = dict(baseline.positions)
        for settled in settlements:
            positions[settled.option] = positions.get(settled.option, 0.0) - settled.quantity
            if settled.delivered:
                positions[settled.underlying] = (positions.get(settled.underlying, 0.0)
                                                 + settled.delivered)
        await self._write_baseline(
            Baseline({s: q for s, q in positions.items() if abs(q) > 1e-9}, baseline.fill_mark))
        for settled in settlements:
            outcome = (f"exercised or assigned: {settled.underlying} {settled.delivered:+g}"
                       if settled.delivered else "no change in a position the bot watches")
            message = (f"{settled.option}: settled at expiry, held {settled.quantity:g}; "
                       f"{outcome}")
            self._recorder.record(
                Level.WARNING, "option_settled", message,
                {"option": settled.option, "quantity": settled.quantity,
                 "underlying": settled.underlying, "delivered": settled.delivered},
                event=OptionSettledEvent(settled, self._clock.now()),
            )

    def paused_by_audit(self) -> bool:
        return self._risk.pause_reason.startswith(PAUSE_PREFIX)

    async def _differences(self, baseline: Baseline) -> list[PositionDifference]:
        await self._recorder.writer.flush()  # every fill heard so far is in the journal
        held = {p.symbol: p.quantity for p in self._broker.positions()}
        fills = await self._journal.net_fills(baseline.fill_mark)
        differences = []
        for symbol in sorted(self._traded):
            if self._unsettled(symbol):
                continue  # its fills may be on their way: judged at the next reconciliation
            expected = baseline.positions.get(symbol, 0.0) + fills.get(symbol, 0.0)
            actual = held.get(symbol, 0.0)
            if abs(actual - expected) > 1e-9:
                differences.append(PositionDifference(symbol, actual, expected))
        return differences

    def _unsettled(self, symbol: str) -> bool:
        """An order working or of unknown outcome, or a fill not in the positions yet."""
        return bool(self._orders.working(symbol)) or self._awaiting_position(symbol)

    async def _fail_closed(self, differences: list[PositionDifference]) -> None:
        numbers = "; ".join(str(d) for d in differences)
        reason = f"{PAUSE_PREFIX}: {numbers} (/resume accepts the broker's, /flatten closes)"
        await self._pause(reason, {"differences": [[d.symbol, d.broker, d.journal]
                                                   for d in differences]})

    async def _pause(self, reason: str, details: dict[str, object]) -> None:
        if self._risk.state is not EngineState.HALTED:  # the reason /status shows, /resume acks
            self._risk.pause(reason)
            await self._trading_state.persist(EngineState.PAUSED, reason, "reconciliation")
        self._recorder.record(
            Level.ERROR, "position_difference", reason, details,
            event=RiskEvent(RiskKind.PAUSED, reason, self._clock.now(),
                            state=EngineState.PAUSED),
        )

    async def _baseline(self) -> Baseline | None:
        text = await self._journal.get_state(BASELINE_KEY)
        if not text:
            return None
        saved = json.loads(text)
        return Baseline({str(k): float(v) for k, v in saved["positions"].items()},
                        int(saved["fill_mark"]))

    async def _write_baseline(self, baseline: Baseline) -> None:
        await self._recorder.write_durable(state_stmt(BASELINE_KEY, json.dumps(
            {"positions": baseline.positions, "fill_mark": baseline.fill_mark})))

    async def _set_baseline(self, settled: bool = True) -> None:
        """The positions and the fill mark of one moment: no fill journaled in between, and
        (`settled`) no order working and no fill the positions do not show yet. None such
        moment within a few tries: the next acknowledgement tries again."""
        for _ in range(BASELINE_TRIES):
            await self._recorder.writer.flush()
            mark = await self._journal.last_fill_mark()
            quiet = not settled or not any(self._unsettled(s) for s in self._traded)
            held = {p.symbol: p.quantity for p in self._broker.positions()
                    if p.symbol in self._traded and p.quantity}
            await self._recorder.writer.flush()
            if quiet and await self._journal.last_fill_mark() == mark:
                await self._write_baseline(Baseline(held, mark))
                log.info("position baseline: %s (fills after %d)", held or "flat", mark)
                return
            await asyncio.sleep(BASELINE_RETRY_SECONDS)
        log.warning("no settled moment for a position baseline; the next reconciliation tries")


def _described(fill: Fill) -> str:
    return (f"{fill.symbol} {fill.side.value} {fill.quantity:g} "
            f"({fill.order_ref}, exec {fill.exec_id})")
