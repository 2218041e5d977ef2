"""The typed requests: what a client can ask the gateway, one dataclass per request
(decoding.py builds them from the wire)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .conditions import OrderCondition
from .contracts import ContractRef


@dataclass(slots=True)
class StartApi:
    client_id: int
    optional_capabilities: str


@dataclass(slots=True)
class ReqPositions:
    pass


@dataclass(slots=True)
class CancelPositions:
    pass


@dataclass(slots=True)
class ReqOpenOrders:
    pass


@dataclass(slots=True)
class ReqAllOpenOrders:
    pass


@dataclass(slots=True)
class ReqAutoOpenOrders:
    auto_bind: bool


@dataclass(slots=True)
class ReqCompletedOrders:
    api_only: bool


@dataclass(slots=True)
class ReqAccountUpdates:
    subscribe: bool
    account: str


@dataclass(slots=True)
class ReqAccountUpdatesMulti:
    req_id: int
    account: str
    model_code: str
    ledger_and_nlv: bool


@dataclass(slots=True)
class CancelAccountUpdatesMulti:
    req_id: int


@dataclass(slots=True)
class ReqAccountSummary:
    req_id: int
    group: str
    tags: str


@dataclass(slots=True)
class CancelAccountSummary:
    req_id: int


@dataclass(slots=True)
class ReqExecutions:
    req_id: int
    client_id: int
    account: str
    time: str
    symbol: str
    sec_type: str
    exchange: str
    side: str


@dataclass(slots=True)
class ReqIds:
    num_ids: int


@dataclass(slots=True)
class ReqContractDetails:
    req_id: int
    contract: ContractRef
    include_expired: bool
    sec_id_type: str
    sec_id: str


@dataclass(slots=True)
class ReqHistoricalData:
    req_id: int
    contract: ContractRef
    end_date_time: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool


@dataclass(slots=True)
class CancelHistoricalData:
    req_id: int


@dataclass(slots=True)
class ReqHeadTimestamp:
    req_id: int
    contract: ContractRef
    use_rth: bool
    what_to_show: str
    format_date: int


@dataclass(slots=True)
class CancelHeadTimestamp:
    req_id: int


@dataclass(slots=True)
class ReqRealTimeBars:
    req_id: int
    contract: ContractRef
    bar_size: int
    what_to_show: str
    use_rth: bool


@dataclass(slots=True)
class CancelRealTimeBars:
    req_id: int


@dataclass(slots=True)
class ReqMktData:
    req_id: int
    contract: ContractRef
    generic_ticks: str
    snapshot: bool
    regulatory_snapshot: bool


@dataclass(slots=True)
class CancelMktData:
    req_id: int


@dataclass(slots=True)
class PlaceOrder:
    """The fields of placeOrder that the simulated broker acts on."""

    order_id: int
    contract: ContractRef
    action: str = ""
    total_quantity: float = 0.0
    order_type: str = ""
    lmt_price: float | None = None
    aux_price: float | None = None
    tif: str = ""
    oca_group: str = ""
    account: str = ""
    open_close: str = ""
    origin: int = 0
    order_ref: str = ""
    transmit: bool = True
    parent_id: int = 0
    outside_rth: bool = False
    hidden: bool = False
    good_after_time: str = ""
    good_till_date: str = ""
    oca_type: int = 0
    trail_stop_price: float | None = None
    trailing_percent: float | None = None
    what_if: bool = False
    conditions: tuple[OrderCondition, ...] = ()
    conditions_ignore_rth: bool = False
    conditions_cancel_order: bool = False


@dataclass(slots=True)
class CancelOrder:
    order_id: int
    manual_cancel_time: str = ""


@dataclass(slots=True)
class ReqGlobalCancel:
    pass


@dataclass(slots=True)
class ReqCurrentTime:
    pass


@dataclass(slots=True)
class ReqMarketDataType:
    market_data_type: int


@dataclass(slots=True)
class ReqManagedAccts:
    pass


@dataclass(slots=True)
class ReqPnL:
    req_id: int
    account: str
    model_code: str


@dataclass(slots=True)
class CancelPnL:
    req_id: int


@dataclass(slots=True)
class ReqPnLSingle:
    req_id: int
    account: str
    model_code: str
    con_id: int


@dataclass(slots=True)
class CancelPnLSingle:
    req_id: int


@dataclass(slots=True)
class ReqPositionsMulti:
    req_id: int
    account: str
    model_code: str


@dataclass(slots=True)
class CancelPositionsMulti:
    req_id: int


@dataclass(slots=True)
class ReqMatchingSymbols:
    req_id: int
    pattern: str


@dataclass(slots=True)
class ReqMarketRule:
    market_rule_id: int


@dataclass(slots=True)
class ReqNewsBulletins:
    all_msgs: bool  # the current day's bulletins first, or only new ones


@dataclass(slots=True)
class CancelNewsBulletins:
    pass


@dataclass(slots=True)
class ReqNewsProviders:
    pass


@dataclass(slots=True)
class ReqHistoricalNews:
    req_id: int
    con_id: int
    provider_codes: str  # "BRFG+DJNL"
    start: str  # exclusive; "" for none
    end: str  # inclusive; "" for now
    total_results: int


@dataclass(slots=True)
class ReqNewsArticle:
    req_id: int
    provider_code: str
    article_id: str


@dataclass(slots=True)
class ReqScannerParameters:
    pass


@dataclass(slots=True)
class ReqScannerSubscription:
    req_id: int
    rows: int  # -1: as many as the scanner gives
    instrument: str
    location: str
    scan_code: str
    above_price: float | None
    below_price: float | None


@dataclass(slots=True)
class CancelScannerSubscription:
    req_id: int


@dataclass(slots=True)
class ReqSecDefOptParams:
    req_id: int
    underlying_symbol: str
    fut_fop_exchange: str
    underlying_sec_type: str
    underlying_con_id: int


@dataclass(slots=True)
class Unsupported:
    """A request ibsim does not implement; it is answered with an error naming it."""

    msg_id: int
    name: str
    req_id: int = -1
    fields: list[str] = field(default_factory=list)
