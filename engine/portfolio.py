"""Positions and account values as the broker reports them, and today's PnL.

Positions come from the broker only. Today's PnL is realized PnL of today's fills (net of
commissions, as IB reports it) plus the change in unrealized PnL since the trading day began,
the trading day being the exchange's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from engine.domain import Position


@dataclass(slots=True)
class Portfolio:
    positions: dict[str, Position] = field(default_factory=dict)
    account_values: dict[str, float] = field(default_factory=dict)
    trading_day: str = ""
    realized_today: float = 0.0
    commissions_today: float = 0.0
    unrealized_at_day_start: float | None = None
    realized_by_symbol: dict[str, float] = field(default_factory=dict)
    last_price: dict[str, float] = field(default_factory=dict)

    def position(self, symbol: str) -> float:
        held = self.positions.get(symbol)
        return held.quantity if held else 0.0

    def set_position(self, position: Position) -> None:
        if position.quantity == 0:
            self.positions.pop(position.symbol, None)
        else:
            self.positions[position.symbol] = position

    def replace_positions(self, positions: list[Position]) -> None:
        self.positions = {p.symbol: p for p in positions if p.quantity != 0}

    def unrealized_of(self, position: Position) -> float | None:
        """`position`'s unrealized PnL at the last price the engine saw (the broker's figure
        when the engine saw no price)."""
        price = self.last_price.get(position.symbol, position.market_price)
        if price is None:
            return position.unrealized_pnl
        return (price * position.multiplier - position.avg_cost) * position.quantity

    def valued_positions(self) -> tuple[Position, ...]:
        """The positions valued at the last price the engine saw."""
        return tuple(
            replace(p, market_price=self.last_price.get(p.symbol, p.market_price),
                    unrealized_pnl=self.unrealized_of(p))
            for p in self.positions.values()
        )

    def unrealized(self) -> float:
        """Unrealized PnL of all positions, valued at the last price the engine saw."""
        return sum(self.unrealized_of(p) or 0.0 for p in self.positions.values())

    def net_liquidation(self) -> float | None:
        return self.account_values.get("NetLiquidation")

    def start_day(self, trading_day: str) -> bool:
        """Begin a new trading day; True when the day changed."""
        if trading_day == self.trading_day:
            return False
        self.trading_day = trading_day
        self.realized_today = 0.0
        self.commissions_today = 0.0
        self.realized_by_symbol = {}
        self.unrealized_at_day_start = self.unrealized()
        return True

    def add_realized(self, symbol: str, realized_pnl: float | None, commission: float) -> None:
        self.commissions_today += commission
        if realized_pnl is not None:
            self.realized_today += realized_pnl
            self.realized_by_symbol[symbol] = (
                self.realized_by_symbol.get(symbol, 0.0) + realized_pnl
            )

    def today_pnl(self) -> float:
        start = self.unrealized_at_day_start or 0.0
        return self.realized_today + self.unrealized() - start
