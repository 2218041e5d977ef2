"""The simulated broker: orders fill against later bars, as bar backtesters (backtrader) do.

It implements the part of `engine.ports.BrokerPort` a backtest uses, with the port's
signatures: `place`, `cancel`, `working_orders`, `positions`, `contract`, `knows`, and
`is_connected` (always). The life cycle (`run`, `stop`, `reconnect`), history, quotes,
`modify`, `global_cancel` and `snapshot` are not implemented: nothing in a backtest calls them.
Instead of a listener's callbacks, `match` returns the fills of one bar.

The fill convention, for an order placed at a bar's close:

- a market order fills at the next bar's open;
- a limit order fills at its price when a later bar's range reaches it, or at that bar's open
  when the open is already better (the price gapped through);
- a stop order fills at its price when a later bar's range reaches it, or at the open when the
  open is already past it (a gap fills at the worse price, as a stop does).

Protective orders placed with a `parent_id` wait for their parent's fill and may fill from the
rest of that same bar; orders sharing an `oca_group` cancel each other when one fills. When a
stop and a limit of one group could both fill in the same bar, the stop is taken: the bars do
not say which came first, and the backtest assumes the worse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.domain import Fill, Instrument, Order, OrderStatus, OrderType, Position, Side
from engine.hours import ALWAYS_OPEN
from engine.ports import BrokerOrder, ContractInfo

MIN_TICK = 0.01


@dataclass(frozen=True, slots=True)
class Commission:
    """Commission per share (or unit), with a minimum per fill."""

    per_share: float = 0.0
    minimum: float = 0.0

    def of(self, quantity: float) -> float:
        if not (self.per_share or self.minimum):
            return 0.0
        return max(quantity * self.per_share, self.minimum)


@dataclass(slots=True)
class _Working:
    order: Order
    oca_group: str
    parent_id: int  # 0: active; else waits for the parent's fill
    placed_at: int  # the bar index at whose close it was placed


class SimulatedBroker:
    """One account, one or more symbols, cash in the account's currency."""

    host = "backtest"
    port = 0
    client_id = 0

    def __init__(self, symbols: tuple[str, ...], cash: float, commission: Commission) -> None:
        self._contracts = {
            s: ContractInfo(Instrument(s), con_id=i + 1, min_tick=MIN_TICK, time_zone="UTC",
                            liquid_hours=ALWAYS_OPEN, trading_hours=ALWAYS_OPEN)
            for i, s in enumerate(symbols)
        }
        self.cash = cash
        self.commission = commission
        self.commissions = 0.0
        self._positions: dict[str, Position] = {}
        self._working: dict[int, _Working] = {}
        self._by_ref: dict[str, int] = {}
        self._next_id = 1
        self.bar_index = -1  # the bar whose close is now: orders placed fill from the next
        self._exec_count = 0
        self._released = 0  # children activated by their parent's fill, ever

    @property
    def is_connected(self) -> bool:
        return True

    # --- the port's calls ---
    def contract(self, symbol: str) -> ContractInfo | None:
        return self._contracts.get(symbol)

    def knows(self, symbol: str) -> bool:
        return symbol in self._contracts

    def place(
        self, order: Order, *, parent_id: int = 0, transmit: bool = True,
        oca_group: str = "", outside_rth: bool = False,
    ) -> int:
        """Accept an order at the current bar's close; it can fill from the next bar on.
        (`transmit` and `outside_rth` change nothing here: bars are all the market there is.)"""
        ib_order_id = self._next_id
        self._next_id += 1
        order.ib_order_id = ib_order_id
        order.status = OrderStatus.SUBMITTED
        self._working[ib_order_id] = _Working(order, oca_group, parent_id, self.bar_index)
        self._by_ref[order.order_ref] = ib_order_id
        return ib_order_id

    def cancel(self, order_ref: str, ib_order_id: int | None = None) -> bool:
        key = ib_order_id or self._by_ref.get(order_ref)
        working = self._working.pop(key, None) if key is not None else None
        if working is None:
            return False
        working.order.status = OrderStatus.CANCELLED
        # A child waiting for this parent can never become active.
        for child_id in [k for k, w in self._working.items() if w.parent_id == key]:
            self.cancel("", child_id)
        return True

    def working_orders(self) -> list[BrokerOrder]:
        return [
            BrokerOrder(w.order.order_ref, key, 0, self.client_id, w.order.symbol, w.order.side,
                        w.order.quantity, w.order.filled, w.order.status,
                        w.order.order_type.value, w.order.limit_price, w.order.stop_price)
            for key, w in self._working.items()
        ]

    def positions(self) -> list[Position]:
        return list(self._positions.values())

    # --- what the runner asks besides the port ---
    @property
    def has_orders(self) -> bool:
        return bool(self._working)

    def position(self, symbol: str) -> float:
        held = self._positions.get(symbol)
        return held.quantity if held else 0.0

    def has_working(self, symbol: str) -> bool:
        """An order for `symbol` other than a protective child is working (the trader's rule)."""
        return any(
            w.order.symbol == symbol and w.order.parent_ref is None
            for w in self._working.values()
        )

    def working(self, symbol: str) -> list[Order]:
        return [w.order for w in self._working.values() if w.order.symbol == symbol]

    def match(
        self, index: int, symbol: str, time: datetime, open_: float, high: float, low: float
    ) -> list[Fill]:
        """The fills of bar `index` (starting at `time`) for `symbol`'s working orders."""
        if not self._working:
            return []
        fills: list[Fill] = []
        # Market orders first (the open), then parents' children may join, then stops before
        # limits (the worse of an ambiguous bar). A pass fills what this bar reaches; another
        # is needed only for the children a fill released (the rest would not fill again).
        while True:
            released = self._released
            candidates = sorted(
                (w for w in self._working.values()
                 if w.order.symbol == symbol and not w.parent_id and w.placed_at < index),
                key=_match_rank,
            )
            for working in candidates:
                if working.order.ib_order_id not in self._working:
                    continue  # cancelled by an OCA sibling's fill above
                price = _fill_price(working.order, open_, high, low)
                if price is None:
                    continue
                fills.append(self._fill(working, time, price))
            if self._released == released:
                return fills

    def _fill(self, working: _Working, time: datetime, price: float) -> Fill:
        order = working.order
        key = order.ib_order_id or 0
        del self._working[key]
        quantity = order.remaining
        order.filled = order.quantity
        order.avg_price = price
        order.status = OrderStatus.FILLED
        commission = self.commission.of(quantity)
        realized = self._book(order.symbol, order.side, quantity, price) - commission
        self.cash -= order.side.sign * quantity * price + commission
        self.commissions += commission
        for other_key, other in list(self._working.items()):
            if other.parent_id == key:
                other.parent_id = 0  # the parent filled: its children are live now
                other.placed_at = -1  # and may fill from this same bar's range
                self._released += 1
            elif working.oca_group and other.oca_group == working.oca_group:
                self.cancel("", other_key)
        self._exec_count += 1
        return Fill(
            exec_id=f"bt.{self._exec_count}", order_ref=order.order_ref, perm_id=key, time=time,
            symbol=order.symbol, side=order.side, quantity=quantity, price=price,
            commission=commission, realized_pnl=realized,
        )

    def _book(self, symbol: str, side: Side, quantity: float, price: float) -> float:
        """Apply a fill to the position at average cost; return the PnL it realized."""
        held = self._positions.get(symbol)
        before = held.quantity if held else 0.0
        cost = held.avg_cost if held else 0.0
        signed = side.sign * quantity
        after = before + signed
        realized = 0.0
        if before and (before > 0) != (signed > 0):
            closed = min(abs(signed), abs(before))
            realized = closed * (price - cost) * (1 if before > 0 else -1)
        if abs(after) < 1e-9:
            self._positions.pop(symbol, None)
        elif before == 0 or (before > 0) != (after > 0):
            self._positions[symbol] = Position(symbol, after, price)  # opened, or flipped
        elif abs(after) > abs(before):
            average = (before * cost + signed * price) / after
            self._positions[symbol] = Position(symbol, after, average)
        else:
            self._positions[symbol] = Position(symbol, after, cost)
        return realized


def _match_rank(working: _Working) -> int:
    kind = working.order.order_type
    return 0 if kind is OrderType.MARKET else 1 if kind is OrderType.STOP else 2


def _fill_price(order: Order, open_: float, high: float, low: float) -> float | None:
    """Where `order` fills in a bar (open, high, low), or None when the bar does not reach it."""
    kind = order.order_type
    if kind is OrderType.MARKET:
        return open_
    buy = order.side is Side.BUY
    if kind is OrderType.LIMIT:
        limit = order.limit_price
        assert limit is not None
        if buy:
            return open_ if open_ <= limit else limit if low <= limit else None
        return open_ if open_ >= limit else limit if high >= limit else None
    if kind is OrderType.STOP:
        stop = order.stop_price
        assert stop is not None
        if buy:
            return open_ if open_ >= stop else stop if high >= stop else None
        return open_ if open_ <= stop else stop if low <= stop else None
    raise ValueError(f"the backtest broker does not fill {kind.value} orders")
