"""Pre-trade risk checks, and the RUNNING / PAUSED / HALTED states.

Every refusal comes with a reason the engine journals. Exits (orders that bring a position
towards zero) pass when PAUSED: a paused bot must still be able to get out.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from engine.domain import EngineState, Side
from engine.hours import TradingHours

# A price further than this from the last price is taken for a bad price, not a trade idea.
PRICE_SANITY_FRACTION = 0.10


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_position: float
    max_notional: float
    max_daily_loss: float
    max_orders_per_minute: int
    bar_seconds: int
    outside_rth: bool = False
    stale_bars: int = 3


@dataclass(frozen=True, slots=True)
class OrderRequest:
    symbol: str
    side: Side
    quantity: float
    reference_price: float | None  # the last price
    position: float  # the broker's position before this order
    limit_price: float | None = None
    multiplier: float = 1.0  # the contract's: an option's price is per share, 100 a contract
    strike: float | None = None  # an option's: what a written option is counted at

    @property
    def written(self) -> float:
        """The option contracts this order sells short (opens or adds to a short position):
        their exposure is the underlying's, not the premium's."""
        if self.strike is None or self.side is not Side.SELL:
            return 0.0
        after = self.position - self.quantity
        return max(0.0, min(self.quantity, -after))

    @property
    def is_exit(self) -> bool:
        """True when the order only reduces the position (never flips it)."""
        after = self.position + self.side.sign * self.quantity
        return self.position != 0 and abs(after) < abs(self.position) + 1e-9 and (
            after == 0 or (after > 0) == (self.position > 0)
        )


@dataclass(frozen=True, slots=True)
class RiskDecision:
    allowed: bool
    reason: str = ""


ALLOWED = RiskDecision(True)


class RiskManager:
    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self.state = EngineState.RUNNING
        self.pause_reason = ""
        self._order_times: deque[datetime] = deque()

    def pause(self, reason: str) -> None:
        if self.state is EngineState.RUNNING:
            self.state = EngineState.PAUSED
        self.pause_reason = reason

    def halt(self, reason: str) -> None:
        self.state = EngineState.HALTED
        self.pause_reason = reason

    def resume(self) -> None:
        self.state = EngineState.RUNNING
        self.pause_reason = ""

    def orders_last_minute(self, now: datetime) -> int:
        while self._order_times and self._order_times[0] <= now - timedelta(minutes=1):
            self._order_times.popleft()
        return len(self._order_times)

    def record_order(self, now: datetime) -> None:
        self._order_times.append(now)

    def is_stale(self, last_bar_time: datetime | None, now: datetime) -> bool:
        if last_bar_time is None:
            return True
        # last_bar_time is a bar's start; it closed one interval later.
        age = now - last_bar_time - timedelta(seconds=self.limits.bar_seconds)
        return age > timedelta(seconds=self.limits.stale_bars * self.limits.bar_seconds)

    def daily_loss_breached(self, today_pnl: float) -> bool:
        return today_pnl <= -self.limits.max_daily_loss

    def check(
        self,
        request: OrderRequest,
        now: datetime,
        last_bar_time: datetime | None,
        hours: TradingHours,
    ) -> RiskDecision:
        """Decide whether an order may go out; the caller journals any refusal."""
        limits = self.limits
        if request.quantity <= 0:
            return RiskDecision(False, "quantity must be positive")
        if self.state is EngineState.HALTED:
            return RiskDecision(False, f"halted: {self.pause_reason}")
        exit_only = request.is_exit
        if self.state is EngineState.PAUSED and not exit_only:
            return RiskDecision(False, f"paused: {self.pause_reason or 'no new entries'}")
        after = request.position + request.side.sign * request.quantity
        if not exit_only and abs(after) > limits.max_position + 1e-9:
            return RiskDecision(
                False,
                f"position cap: {request.symbol} would be {after:g}, cap {limits.max_position:g}",
            )
        price = request.limit_price or request.reference_price
        if price is None:
            if not exit_only:
                return RiskDecision(False, f"no price yet for {request.symbol}")
        else:
            refused = None if exit_only else notional_refusal(request, price, limits.max_notional)
            if refused is not None:
                return RiskDecision(False, refused)
            if (
                request.limit_price is not None
                and request.reference_price
                and abs(request.limit_price / request.reference_price - 1) > PRICE_SANITY_FRACTION
            ):
                return RiskDecision(
                    False,
                    f"price sanity: limit {request.limit_price:g} is more than "
                    f"{PRICE_SANITY_FRACTION:.0%} from the last price {request.reference_price:g}",
                )
        if self.orders_last_minute(now) >= limits.max_orders_per_minute:
            return RiskDecision(
                False, f"order rate cap: {limits.max_orders_per_minute} orders in the last minute"
            )
        if not exit_only:
            if self.is_stale(last_bar_time, now):
                return RiskDecision(False, f"stale data: no recent bar for {request.symbol}")
            if not limits.outside_rth and not hours.is_open(now):
                return RiskDecision(False, f"outside trading hours for {request.symbol}")
        return ALLOWED


def notional_refusal(request: OrderRequest, price: float, max_notional: float) -> str | None:
    """Why an entry is over MAX_NOTIONAL, or None. A written option is counted as the
    underlying it may have to deliver or take (its strike stands in for the underlying's
    price); a bought one as its premium, which is all it can lose."""
    written, strike = request.written, request.strike
    if written and strike is not None:
        notional = written * request.multiplier * strike
        if notional > max_notional:
            return (f"notional cap: {notional:,.2f} over {max_notional:,.2f} (the underlying "
                    f"of {written:g} written × {request.multiplier:g} at the strike {strike:g})")
        return None
    notional = price * request.quantity * request.multiplier
    if notional > max_notional:
        return f"notional cap: {notional:,.2f} over {max_notional:,.2f}" + (
            " (the premium)" if request.strike is not None else "")
    return None


def option_expiring(symbol: str, expiry: date | None, time_zone: str, now: datetime) -> str | None:
    """Why an option takes no entry now: from its last trading day on (in its exchange's time
    zone), exits only. IB settles an option held past expiry without an execution (exercised
    into the stock, or gone worthless), which the position audit can only pause on."""
    if expiry is None or now.astimezone(ZoneInfo(time_zone)).date() < expiry:
        return None
    return f"{symbol} expires {expiry:%Y-%m-%d}: exits only on its last day"
