"""Request handlers: one small function per request type, answering on the client's session.

Handlers read and change the server state and write messages; the order book, market and
accounts do the work, the fan-out modules build the account and order messages. This module
holds the greeting and the connection-level handlers and imports the subject modules
(`handlers_info`, `handlers_account`, `handlers_orders`, `handlers_market`,
`handlers_options`) so that their
handlers are registered in `HANDLERS` (`handler_registry`).
"""

from __future__ import annotations

from . import (  # noqa: F401  (registers their handlers)
    handlers_account,
    handlers_info,
    handlers_market,
    handlers_options,
    handlers_orders,
)
from . import messages as msg
from . import requests as rq
from .handler_registry import HANDLERS, handles
from .session import ClientSession
from .state import ServerState

__all__ = ["HANDLERS", "greeting"]


# --- connection-level ----------------------------------------------------------------------

_FARMS_OK = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)


def greeting(state: ServerState, s: ClientSession) -> list[list[str]]:
    """What a client is told once its startApi is accepted."""
    assert s.client_id is not None
    out = [
        msg.managed_accounts(state.account_names),
        msg.next_valid_id(state.broker.next_order_id(s.client_id)),
    ]
    out += [msg.error(-1, code, text, s.version) for code, text in _FARMS_OK]
    if state.faults.connectivity_lost:
        # As TWS does: a client connecting while the servers are away is told so.
        out.append(msg.error(
            -1, 2110,
            "Connectivity between Trader Workstation and server is broken. "
            "It will be restored automatically.",
            s.version,
        ))  # fmt: skip
    return out


@handles(rq.ReqCurrentTime)
def _current_time(state: ServerState, s: ClientSession, req: rq.ReqCurrentTime) -> None:
    s.write(msg.current_time(state.clock.now()))


@handles(rq.ReqManagedAccts)
def _managed(state: ServerState, s: ClientSession, req: rq.ReqManagedAccts) -> None:
    s.write(msg.managed_accounts(state.account_names))


@handles(rq.ReqIds)
def _ids(state: ServerState, s: ClientSession, req: rq.ReqIds) -> None:
    assert s.client_id is not None
    s.write(msg.next_valid_id(state.broker.next_order_id(s.client_id)))


@handles(rq.ReqMarketDataType)
def _md_type(state: ServerState, s: ClientSession, req: rq.ReqMarketDataType) -> None:
    s.market_data_type = req.market_data_type if req.market_data_type in (1, 2, 3, 4) else 1


@handles(rq.ReqAutoOpenOrders)
def _auto_open(state: ServerState, s: ClientSession, req: rq.ReqAutoOpenOrders) -> None:
    """Binding of manual TWS orders: ibsim has none, so there is nothing to bind."""


@handles(rq.Unsupported)
def _unsupported(state: ServerState, s: ClientSession, req: rq.Unsupported) -> None:
    s.send_error(
        req.req_id,
        505,
        f"Unsupported request {req.name} (message id {req.msg_id}): ibsim does not implement it",
    )
