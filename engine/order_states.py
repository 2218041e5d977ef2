"""Which order status may follow which: the rules of an order's life, kept as data.

`OrderManager.transition` is the only place that assigns an order's status, and it applies
only the pairs listed here. Anything else is an impossible transition: logged, journaled and
not applied. (nautilus_trader keeps its `_ORDER_STATE_TABLE`, and ib_async its
`OrderStatus.DoneStates`, the same way.)

The rows, and why:
- INTENT is journaled, not sent. It becomes PENDING when placed, CANCELLED when it is dropped
  unsent, UNKNOWN after a restart (it may have been sent), or any broker status when the
  answer races the send.
- A sent order (PENDING, SUBMITTED, PARTIAL) takes any status the broker reports, and UNKNOWN
  at a drop (no answer: its outcome is not known until reconciliation); once the broker has
  it (SUBMITTED, PARTIAL), never PENDING again.
- UNKNOWN takes any status the broker or reconciliation shows; CANCELLED when its absence is
  proven (IB's servers up, no trace, no position change, for a whole grace period).
- FILLED is final. REJECTED is too, but for an execution: a fill is never wrong.
- CANCELLED is final too, except that the broker itself may report it alive or filled: a
  cancel inferred from an error, or from absence, can be wrong; fills never are.
"""

from __future__ import annotations

from engine.domain import OrderStatus

_BROKER_ANSWERS = frozenset({
    OrderStatus.PENDING, OrderStatus.SUBMITTED, OrderStatus.PARTIAL, OrderStatus.FILLED,
    OrderStatus.CANCELLED, OrderStatus.REJECTED,
})
_SENT = _BROKER_ANSWERS | {OrderStatus.UNKNOWN}
# Once the broker has an order, it never goes back to "PendingSubmit".
_AT_THE_BROKER = _SENT - {OrderStatus.PENDING}

ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.INTENT: frozenset(_SENT),
    OrderStatus.PENDING: frozenset(_SENT),
    OrderStatus.SUBMITTED: frozenset(_AT_THE_BROKER),
    OrderStatus.PARTIAL: frozenset(_AT_THE_BROKER),
    OrderStatus.UNKNOWN: frozenset(_SENT),
    OrderStatus.CANCELLED: frozenset(
        {OrderStatus.SUBMITTED, OrderStatus.PARTIAL, OrderStatus.FILLED}
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.REJECTED: frozenset({OrderStatus.PARTIAL, OrderStatus.FILLED}),
}


def allowed(current: OrderStatus, new: OrderStatus) -> bool:
    """Whether an order in `current` may go to `new` (staying where it is always may)."""
    return new is current or new in ALLOWED[current]
