"""Order news for the clients: the broker's order changes, fills and order errors become
openOrder / orderStatus / execDetails / commissionReport / error messages to the client that
owns the order; and the open-order lists clients ask for. With a state file, news of an order
or a fill goes out only once the state file holds it, as IB tells of nothing it could lose."""

from __future__ import annotations

import asyncio
import logging
import time

from . import messages as msg
from .account_fanout import AccountFanout
from .hooks import FillRecord
from .orders import Execution, SimOrder
from .persistence import StateSaver
from .session import ClientSession
from .state import ServerState

log = logging.getLogger("ibsim")


def open_order_messages(
    state: ServerState, s: ClientSession, orders: list[SimOrder]
) -> list[list[str]]:
    """openOrder and orderStatus of each order, then openOrderEnd."""
    out = []
    for order in sorted(orders, key=lambda o: o.perm_id):
        spec = state.universe.get(order.con_id)
        if spec is not None:
            out.append(msg.open_order(order, spec, s.version))
            out.append(msg.order_status(order))
            s.known_orders.add(order.perm_id)
    out.append(msg.open_order_end())
    return out


class OrderFanout:
    """The broker's listener (broker.BrokerListener): tells the owning client, refreshes the
    accounts after fills and has the state file saved — before the news goes out: every
    client's output is held from the first change until one save at the end of the loop's
    turn (`commit`), so a burst of fills costs one write and nothing overtakes the news."""

    def __init__(self, state: ServerState, accounts: AccountFanout, saver: StateSaver) -> None:
        self.state = state
        self.accounts = accounts
        self.saver = saver
        self._holding = False

    def commit(self) -> None:
        """Save the state file now and let the held output go (nothing held: nothing to do)."""
        if not self._holding:
            return
        self._holding = False
        try:
            self.saver.save()
        except OSError as exc:
            # The simulator goes on (the clients are told) rather than stall every client.
            log.error("state file %s: cannot save (%s)", self.saver.path, exc)
        self.state.clients.release()

    def _hold_until_saved(self) -> None:
        if self.saver.path is None or self._holding:
            return
        self._holding = True
        self.state.clients.hold()
        asyncio.get_running_loop().call_soon(self.commit)

    def order_changed(self, order: SimOrder, open_order: bool) -> None:
        self._hold_until_saved()
        s = self.state.clients.get(order.client_id)
        spec = self.state.universe.get(order.con_id)
        if s is not None and spec is not None:
            out = []
            if open_order or order.perm_id not in s.known_orders:
                out.append(msg.open_order(order, spec, s.version))
                s.known_orders.add(order.perm_id)
            out.append(msg.order_status(order))
            s.write_many(out)

    def order_filled(self, order: SimOrder, execution: Execution) -> None:
        self._hold_until_saved()
        s = self.state.clients.get(order.client_id)
        spec = self.state.universe.get(order.con_id)
        if s is not None and spec is not None:
            out = []
            if order.perm_id not in s.known_orders:
                out.append(msg.open_order(order, spec, s.version))
                s.known_orders.add(order.perm_id)
            out += [
                msg.exec_details(-1, execution, spec, s.version),
                msg.order_status(order),
                msg.commission_report(execution),
            ]
            s.write_many(out)
        log.info(
            "fill %s: %s %g %s @ %g (order %d of client %d, %s)",
            execution.exec_id, execution.side, execution.shares, spec.symbol if spec else "?",
            execution.price, order.order_id, order.client_id, order.status,
        )  # fmt: skip
        self.state.hooks.fill.emit(FillRecord(time.perf_counter(), execution))
        self.accounts.position_changed(order.account, order.con_id)

    def order_error(self, client_id: int, order_id: int, code: int, message: str) -> None:
        s = self.state.clients.get(client_id)
        if s is not None:
            s.send_error(order_id, code, message)
        if code not in (202,):
            log.info("client %d order %d: error %d %s", client_id, order_id, code, message)
