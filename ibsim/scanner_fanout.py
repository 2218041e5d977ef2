"""Scanner subscriptions kept and refreshed: IB answers reqScannerSubscription at once and then
sends the ranking again about every 30 seconds until it is cancelled; so does ibsim, in
simulated time."""

from __future__ import annotations

from . import messages as msg
from .scanner import rank
from .session import ScannerSub
from .state import ServerState

SCANNER_REFRESH_SECONDS = 30.0  # simulated seconds between a subscription's rankings


def ranking(state: ServerState, req_id: int, sub: ScannerSub, now: float) -> list[str]:
    """The scannerData message of `sub` ranked at `now` (ScanError for one ibsim cannot rank)."""
    specs = rank(state.market, state.universe, sub.scan_code, sub.instrument, sub.location,
                 sub.rows, now, sub.above_price, sub.below_price)
    return msg.scanner_data(req_id, specs)


def refresh_scanners(state: ServerState, now: float) -> None:
    """After a step of the market: every subscription due is sent its ranking again."""
    for session in state.clients.sessions():
        for req_id, sub in session.subs.scanner.items():
            if now >= sub.next_at:
                sub.next_at = now + SCANNER_REFRESH_SECONDS
                session.write(ranking(state, req_id, sub, now))
