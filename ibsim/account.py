"""Paper accounts: cash, positions with IB-style average cost, PnL, commissions; the account's
values with the margin of `margin`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .contracts import ContractSpec
from .margin import requirement


def commission_for(spec: ContractSpec, qty: float, price: float) -> float:
    """IB Pro-like fixed commissions."""
    value = abs(qty) * price * spec.multiplier_value
    if spec.sec_type == "STK":
        return round(min(max(1.0, 0.005 * abs(qty)), 0.01 * value) if value else 1.0, 4)
    if spec.sec_type == "CASH":
        return round(max(2.0, 0.00002 * value), 4)
    if spec.sec_type == "CRYPTO":
        return round(max(1.75, 0.0018 * value), 4)
    if spec.sec_type == "OPT":
        return round(max(1.0, 0.65 * abs(qty)), 4)  # IB Pro: $0.65 a contract, $1 an order
    return round(2.25 * abs(qty), 4)  # futures: commission plus exchange fees per contract


@dataclass(slots=True)
class Position:
    """``avg_cost`` follows IB: per unit, times the multiplier, commissions included;
    ``avg_price`` is the plain average entry price (for futures' cash settlement)."""

    con_id: int
    quantity: float = 0.0
    avg_cost: float = 0.0
    avg_price: float = 0.0
    realized_pnl: float = 0.0


@dataclass(slots=True)
class FillResult:
    realized_pnl: float | None  # None for an opening fill (IB sends it unset)


@dataclass(slots=True)
class Account:
    name: str
    cash: float
    realized_pnl: float = 0.0
    positions: dict[int, Position] = field(default_factory=dict)

    def apply_fill(
        self, spec: ContractSpec, signed_qty: float, price: float, commission: float
    ) -> FillResult:
        mult = spec.multiplier_value
        pos = self.positions.setdefault(spec.con_id, Position(spec.con_id))
        realized: float | None = None
        qty_left = signed_qty
        comm_left = commission
        if pos.quantity and (pos.quantity > 0) != (signed_qty > 0):
            closing = min(abs(signed_qty), abs(pos.quantity))
            direction = 1.0 if pos.quantity > 0 else -1.0
            comm_close = commission * closing / abs(signed_qty)
            realized = (price * mult - pos.avg_cost) * closing * direction - comm_close
            gross = (price - pos.avg_price) * closing * direction * mult
            pos.quantity -= direction * closing
            qty_left = signed_qty + direction * closing
            comm_left = commission - comm_close
            if spec.sec_type == "FUT":
                self.cash += gross - comm_close
            else:
                self.cash += direction * closing * price * mult - comm_close
            if abs(pos.quantity) < 1e-12:
                pos.quantity, pos.avg_cost, pos.avg_price = 0.0, 0.0, 0.0
            pos.realized_pnl += realized
            self.realized_pnl += realized
        if abs(qty_left) > 1e-12:
            old = abs(pos.quantity)
            new = old + abs(qty_left)
            pos.avg_cost = (pos.avg_cost * old + price * mult * abs(qty_left) + comm_left) / new
            pos.avg_price = (pos.avg_price * old + price * abs(qty_left)) / new
            pos.quantity += qty_left
            if spec.sec_type == "FUT":
                self.cash -= comm_left
            else:
                self.cash -= qty_left * price * mult + comm_left
        return FillResult(realized)

    # --- valuation --------------------------------------------------------------------------

    def values(
        self, specs: Callable[[int], ContractSpec | None], mark: Callable[[ContractSpec], float]
    ) -> AccountValues:
        gross = 0.0
        net_liq = self.cash
        unrealized = 0.0
        init = maint = 0.0
        long_options = 0.0  # no loan value
        for pos in self.positions.values():
            spec = specs(pos.con_id)
            if spec is None or not pos.quantity:
                continue
            price = mark(spec)
            mult = spec.multiplier_value
            value = pos.quantity * price * mult
            unrealized += value - pos.quantity * pos.avg_cost
            under = specs(spec.under_con_id) if spec.under_con_id else None
            need = requirement(spec, pos.quantity, price, mark(under) if under else None)
            init += need.initial
            maint += need.maintenance
            if spec.sec_type == "FUT":
                net_liq += (price - pos.avg_price) * pos.quantity * mult
            else:
                net_liq += value
                gross += abs(value)
                if spec.sec_type == "OPT" and pos.quantity > 0:
                    long_options += value
        return AccountValues(
            net_liquidation=net_liq,
            cash=self.cash,
            gross_position_value=gross,
            init_margin=init,
            maint_margin=maint,
            equity_with_loan=net_liq - long_options,
            realized_pnl=self.realized_pnl,
            unrealized_pnl=unrealized,
        )


@dataclass(slots=True)
class AccountValues:
    net_liquidation: float
    cash: float
    gross_position_value: float
    init_margin: float
    maint_margin: float
    realized_pnl: float
    unrealized_pnl: float
    equity_with_loan: float  # net liquidation less what has no loan value (long options)

    @property
    def available_funds(self) -> float:
        return self.equity_with_loan - self.init_margin

    @property
    def excess_liquidity(self) -> float:
        return self.equity_with_loan - self.maint_margin

    @property
    def buying_power(self) -> float:
        """Reg T overnight buying power: the available funds at 50% initial margin."""
        return max(0.0, self.available_funds * 2.0)

    def tags(self) -> list[tuple[str, float]]:
        """(tag, value) pairs in USD, the names updateAccountValue/accountSummary use."""
        return [
            ("NetLiquidation", self.net_liquidation),
            ("TotalCashValue", self.cash),
            ("SettledCash", self.cash),
            ("AccruedCash", 0.0),
            ("BuyingPower", self.buying_power),
            ("EquityWithLoanValue", self.equity_with_loan),
            ("PreviousDayEquityWithLoanValue", self.equity_with_loan),
            ("GrossPositionValue", self.gross_position_value),
            ("RegTEquity", self.equity_with_loan),
            ("RegTMargin", self.init_margin),
            ("SMA", max(0.0, self.available_funds)),
            ("InitMarginReq", self.init_margin),
            ("MaintMarginReq", self.maint_margin),
            ("AvailableFunds", self.available_funds),
            ("ExcessLiquidity", self.excess_liquidity),
            (
                "Cushion",
                self.excess_liquidity / self.net_liquidation if self.net_liquidation else 0,
            ),
            ("FullInitMarginReq", self.init_margin),
            ("FullMaintMarginReq", self.maint_margin),
            ("FullAvailableFunds", self.available_funds),
            ("FullExcessLiquidity", self.excess_liquidity),
            (
                "Leverage",
                self.gross_position_value / self.net_liquidation if self.net_liquidation else 0,
            ),
            ("RealizedPnL", self.realized_pnl),
            ("UnrealizedPnL", self.unrealized_pnl),
            ("CashBalance", self.cash),
        ]
