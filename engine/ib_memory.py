"""ib_async's memory of done trades, emptied as the day goes.

ib_async keeps every Trade and Fill of a connection until it disconnects: thousands a day, most
of the engine's memory. A trade done at IB (filled or cancelled, every execution and its
commission report in) is forgotten DONE_TRADE_SECONDS after it was done; the journal has it,
and reconciliation asks IB itself.
"""

from __future__ import annotations

import time

from ib_async import IB, Trade
from ib_async import Fill as IBFill

DONE_TRADE_SECONDS = 10.0  # wall seconds a done trade is kept, for its late reports
_FORGETTABLE = frozenset({"Filled", "Cancelled", "ApiCancelled"})  # not Inactive: it may come back


class DoneTrades:
    """The trades done at IB, waiting to be forgotten by ib_async and by the broker's own
    map of live trades (`live`, order_ref -> Trade)."""

    def __init__(self, ib: IB, live: dict[str, Trade]) -> None:
        self._ib = ib
        self._live = live
        self._done: dict[int, tuple[float, Trade]] = {}  # id -> (done since, trade)

    def note(self, trade: Trade) -> None:
        """`trade` may be done: remember when, and forget those done long enough."""
        if trade.orderStatus.status in _FORGETTABLE:
            self._done.setdefault(id(trade), (time.monotonic(), trade))
        self.forget_due()

    def clear(self) -> None:
        """The connection is gone, and ib_async's trades with it."""
        self._done.clear()

    def forget_due(self) -> None:
        """Forget the trades done for DONE_TRADE_SECONDS whose executions and commission
        reports are all in; one still waiting for them is looked at again later."""
        now = time.monotonic()
        waiting = []
        while self._done:
            key, (since, trade) = next(iter(self._done.items()))
            if now - since < DONE_TRADE_SECONDS:
                break
            del self._done[key]
            if trade.orderStatus.status not in _FORGETTABLE:
                continue  # alive again: noted when it is done
            fills = trade.fills
            complete = (sum(f.execution.shares for f in fills) >= trade.orderStatus.filled - 1e-9
                        and all(f.commissionReport.execId for f in fills))
            if complete:
                self._forget(trade)
            else:
                waiting.append((key, trade))
        for key, trade in waiting:
            self._done[key] = (now, trade)

    def forget_orphan_fills(self, ib_fills: list[IBFill]) -> None:
        """ib_async keeps the executions a request returns; those of no trade it knows (done
        before this connection, or forgotten) can come to nothing more: the journal has them."""
        wrapper = self._ib.wrapper
        for ib_fill in ib_fills:
            execution = ib_fill.execution
            if (execution.permId not in wrapper.permId2Trade
                    and wrapper.fills.get(execution.execId) is ib_fill):
                del wrapper.fills[execution.execId]

    def _forget(self, trade: Trade) -> None:
        wrapper = self._ib.wrapper
        order = trade.order
        for key in (wrapper.orderKey(order.clientId, order.orderId, order.permId), order.permId):
            if wrapper.trades.get(key) is trade:
                del wrapper.trades[key]
        if wrapper.permId2Trade.get(order.permId) is trade:
            del wrapper.permId2Trade[order.permId]
        for fill in trade.fills:
            if wrapper.fills.get(fill.execution.execId) is fill:
                del wrapper.fills[fill.execution.execId]
        if self._live.get(order.orderRef) is trade:
            del self._live[order.orderRef]
