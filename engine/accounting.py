"""The trading day's money: equity snapshots, and the daily loss limit that pauses trading.

The trading day is the exchange's (its time zone comes with the first contract). Equity is
journaled every EQUITY_SNAPSHOT_MINUTES of broker time, at a closed bar; the daily loss limit
is checked at every closed bar and whenever a fill's PnL is counted.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.clock import BrokerClock
from engine.config import Settings
from engine.domain import EngineState
from engine.events import Level, RiskEvent, RiskKind
from engine.hours import trading_day
from engine.journal_rows import equity_stmt, state_statements, state_stmt
from engine.portfolio import Portfolio
from engine.recorder import Recorder
from engine.risk import RiskManager


class Accounting:
    def __init__(
        self,
        settings: Settings,
        portfolio: Portfolio,
        risk: RiskManager,
        recorder: Recorder,
        clock: BrokerClock,
    ) -> None:
        self._settings = settings
        self._portfolio = portfolio
        self._risk = risk
        self._recorder = recorder
        self._clock = clock
        self.exchange_tz = "America/New_York"  # until the first contract tells
        self._last_equity_at: datetime | None = None

    def trading_day(self) -> str:
        return trading_day(self._clock.now(), self.exchange_tz)

    def on_trading_bar(self) -> None:
        """A bar closed while trading: snapshot equity when due (bookkeeping: a failure is
        reported and the bar's decision goes on), then check the daily loss."""
        try:
            self._snapshot_equity()
        except Exception as exc:
            self._recorder.failure("equity snapshot", exc)
        self.check_daily_loss()

    def _snapshot_equity(self) -> None:
        now = self._clock.now()
        day = trading_day(now, self.exchange_tz)
        if self._portfolio.start_day(day):
            self._recorder.write(state_stmt("trading_day", day))
        interval = timedelta(minutes=self._settings.equity_snapshot_minutes)
        if self._last_equity_at is not None and now - self._last_equity_at < interval:
            return
        self._last_equity_at = now
        portfolio = self._portfolio
        self._recorder.write(equity_stmt(
            now, portfolio.net_liquidation(), portfolio.realized_today, portfolio.unrealized()
        ))

    def check_daily_loss(self) -> None:
        if self._risk.state is not EngineState.RUNNING:
            return
        pnl = self._portfolio.today_pnl()
        if not self._risk.daily_loss_breached(pnl):
            return
        reason = (f"daily loss limit: today's PnL {pnl:,.2f} reached "
                  f"-{self._settings.max_daily_loss:,.2f}")
        self._risk.pause(reason)
        for statement in state_statements(EngineState.PAUSED, reason, "risk")[:-1]:
            self._recorder.write(statement)
        self._recorder.record(
            Level.INFO, "state", f"{EngineState.PAUSED.value} by risk: {reason}",
            event=RiskEvent(RiskKind.PAUSED, reason, self._clock.now(),
                            state=EngineState.PAUSED),
        )

