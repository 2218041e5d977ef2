"""Orders as clients ask for them (tickets), and the order and execution records the simulated
broker keeps."""

from __future__ import annotations

from dataclasses import dataclass

from .conditions import OrderCondition
from .contracts import ContractRef

# Order statuses as IB reports them.
PENDING_SUBMIT = "PendingSubmit"
PRE_SUBMITTED = "PreSubmitted"
SUBMITTED = "Submitted"
FILLED = "Filled"
CANCELLED = "Cancelled"
INACTIVE = "Inactive"
DONE_STATES = frozenset({FILLED, CANCELLED, INACTIVE})

ORDER_TYPES = frozenset({"MKT", "LMT", "STP", "STP LMT", "TRAIL"})
TIFS = frozenset({"DAY", "GTC", "IOC"})


@dataclass(frozen=True, slots=True)
class OrderTicket:
    """An order as a client asks for it: a new order, or new terms for the order ``order_id``
    the client already placed. The broker validates it and keeps a ``SimOrder``."""

    order_id: int
    contract: ContractRef
    action: str  # BUY / SELL
    total_quantity: float
    order_type: str
    lmt_price: float | None = None
    aux_price: float | None = None
    tif: str = ""  # "" means DAY
    oca_group: str = ""
    oca_type: int = 0
    account: str = ""  # "" means the first managed account
    order_ref: str = ""
    transmit: bool = True
    parent_id: int = 0
    outside_rth: bool = False
    trail_stop_price: float | None = None
    trailing_percent: float | None = None
    conditions: tuple[OrderCondition, ...] = ()
    conditions_ignore_rth: bool = False
    conditions_cancel_order: bool = False  # when the conditions are met: cancel, not submit


@dataclass(slots=True)
class SimOrder:
    """One order as the broker holds it (identity: permId; per client: clientId+orderId)."""

    perm_id: int
    client_id: int
    order_id: int
    account: str
    con_id: int
    route_exchange: str  # the exchange of the contract the client sent
    action: str  # BUY / SELL
    total_quantity: float
    order_type: str
    lmt_price: float | None = None
    aux_price: float | None = None
    tif: str = "DAY"
    oca_group: str = ""
    oca_type: int = 0
    order_ref: str = ""
    transmit: bool = True
    parent_id: int = 0
    outside_rth: bool = False
    trail_stop_price: float | None = None
    trailing_percent: float | None = None
    status: str = PENDING_SUBMIT
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    placed_at: float = 0.0
    completed_at: float = 0.0
    completed_status: str = ""
    expires_at: float | None = None  # end of the session a DAY order lives in
    triggered: bool = False  # stop orders: the stop has been hit
    trail_extreme: float | None = None
    staged: bool = False  # sent with transmit=False and not yet released
    why_held: str = ""
    conditions: tuple[OrderCondition, ...] = ()
    conditions_ignore_rth: bool = False
    conditions_cancel_order: bool = False
    awaiting_conditions: bool = False  # held (PreSubmitted) until its conditions are met

    @property
    def remaining(self) -> float:
        return max(0.0, self.total_quantity - self.filled)

    @property
    def is_done(self) -> bool:
        return self.status in DONE_STATES

    @property
    def is_buy(self) -> bool:
        return self.action == "BUY"

    @property
    def key(self) -> tuple[int, int]:
        return (self.client_id, self.order_id)


@dataclass(slots=True)
class Execution:
    exec_id: str
    perm_id: int
    order_id: int
    client_id: int
    account: str
    con_id: int
    exchange: str
    side: str  # BOT / SLD
    shares: float
    price: float
    time: float  # simulated epoch seconds
    cum_qty: float
    avg_price: float
    order_ref: str
    commission: float
    realized_pnl: float | None
    currency: str = "USD"
