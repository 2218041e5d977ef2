"""What IB's error codes mean and what the engine does about each (see IB_NOTES.md)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ErrorAction(enum.Enum):
    INFO = "info"  # nothing to do
    DEGRADED = "degraded"  # IB's servers unreachable: no new orders until restored
    RESTORED_DATA_LOST = "restored_data_lost"  # resubscribe market data, reconcile
    RESTORED = "restored"  # reconcile
    DATA_STALE = "data_stale"  # a data farm is down
    RECONNECT = "reconnect"
    ORDER_REJECTED = "order_rejected"
    ORDER_CANCELLED = "order_cancelled"
    RESYNC = "resync"  # an order's state is not what we think: re-sync fills and positions
    PACING = "pacing"
    CONFIG = "config"  # a configuration problem (unknown contract, client id in use)
    RESUBSCRIBE = "resubscribe"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    meaning: str
    action: ErrorAction


ERRORS: dict[int, ErrorInfo] = {
    100: ErrorInfo("message rate to the gateway exceeded", ErrorAction.ERROR),
    161: ErrorInfo("cancel attempted on an order in a state that cannot be cancelled",
                   ErrorAction.RESYNC),
    162: ErrorInfo("historical data service error", ErrorAction.PACING),
    200: ErrorInfo("no security definition found (unknown or ambiguous contract)",
                   ErrorAction.CONFIG),
    201: ErrorInfo("order rejected", ErrorAction.ORDER_REJECTED),
    202: ErrorInfo("order cancelled", ErrorAction.ORDER_CANCELLED),
    326: ErrorInfo("client id already in use", ErrorAction.CONFIG),
    420: ErrorInfo("invalid real-time query (pacing or permissions)", ErrorAction.PACING),
    502: ErrorInfo(
        "could not connect: gateway down, wrong port, API disabled or IP not trusted",
        ErrorAction.RECONNECT,
    ),
    504: ErrorInfo("not connected", ErrorAction.RECONNECT),
    1100: ErrorInfo("connectivity between IB and the gateway lost", ErrorAction.DEGRADED),
    1101: ErrorInfo("connectivity restored, market data lost", ErrorAction.RESTORED_DATA_LOST),
    1102: ErrorInfo("connectivity restored, data maintained", ErrorAction.RESTORED),
    2103: ErrorInfo("a market data farm connection is broken", ErrorAction.DATA_STALE),
    2104: ErrorInfo("market data farm connection is OK", ErrorAction.INFO),
    2105: ErrorInfo("a historical data farm connection is broken", ErrorAction.DATA_STALE),
    2106: ErrorInfo("historical data farm connection is OK", ErrorAction.INFO),
    2107: ErrorInfo("historical data farm connection is inactive", ErrorAction.INFO),
    2108: ErrorInfo("market data farm connection is inactive", ErrorAction.INFO),
    2110: ErrorInfo("connectivity between the gateway and IB's servers broken",
                    ErrorAction.DEGRADED),
    2157: ErrorInfo("a security definition data farm connection is broken",
                    ErrorAction.DATA_STALE),
    2158: ErrorInfo("security definition data farm connection is OK", ErrorAction.INFO),
    10147: ErrorInfo("order to cancel not found", ErrorAction.RESYNC),
    10148: ErrorInfo("order cannot be cancelled in its state (usually filled)",
                     ErrorAction.RESYNC),
    # Answers to a /news request, which tells the user itself: nothing to alert.
    10172: ErrorInfo("news article request failed", ErrorAction.INFO),
    10182: ErrorInfo("live updates of a historical data request failed",
                     ErrorAction.RESUBSCRIBE),
    10197: ErrorInfo("no market data during a competing live session", ErrorAction.WARNING),
    10276: ErrorInfo("news feed not allowed: no subscription to the provider", ErrorAction.INFO),
    10349: ErrorInfo("order TIF set to DAY by preset; the order is live", ErrorAction.RESYNC),
}


def classify(code: int) -> ErrorInfo:
    known = ERRORS.get(code)
    if known is not None:
        return known
    if 2100 <= code < 2200:
        return ErrorInfo("gateway warning", ErrorAction.WARNING)
    return ErrorInfo("IB error", ErrorAction.ERROR)
