"""The request handlers' registry: `HANDLERS` maps a request type to the function that answers
it, `handles` registers one. The handler modules (`handlers`, `handlers_info`,
`handlers_account`, `handlers_orders`, `handlers_market`) register into it when imported;
`handlers` imports them all, so importing it fills the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .session import ClientSession
from .state import ServerState

Handler = Callable[[ServerState, ClientSession, Any], None]
HANDLERS: dict[type, Handler] = {}

HMDS = "Historical Market Data Service error message:"  # the prefix of IB's HMDS errors


def handles(req_type: type) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[req_type] = fn
        return fn

    return register
