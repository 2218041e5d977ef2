"""Request decoding: a client message (list of fields) becomes a typed request (requests.py).

The field layouts mirror ib_async 2.1.0's ``client.py`` (see /work/shared/TWS_WIRE.md §1).
"""

from __future__ import annotations

from collections.abc import Callable

from .conditions import (
    CONDITION_TYPES,
    ConditionError,
    OrderCondition,
    field_count,
    from_fields,
)
from .contracts import ContractRef
from .requests import (
    CancelAccountSummary,
    CancelAccountUpdatesMulti,
    CancelHeadTimestamp,
    CancelHistoricalData,
    CancelMktData,
    CancelNewsBulletins,
    CancelOrder,
    CancelPnL,
    CancelPnLSingle,
    CancelPositions,
    CancelPositionsMulti,
    CancelRealTimeBars,
    CancelScannerSubscription,
    PlaceOrder,
    ReqAccountSummary,
    ReqAccountUpdates,
    ReqAccountUpdatesMulti,
    ReqAllOpenOrders,
    ReqAutoOpenOrders,
    ReqCompletedOrders,
    ReqContractDetails,
    ReqCurrentTime,
    ReqExecutions,
    ReqGlobalCancel,
    ReqHeadTimestamp,
    ReqHistoricalData,
    ReqHistoricalNews,
    ReqIds,
    ReqManagedAccts,
    ReqMarketDataType,
    ReqMarketRule,
    ReqMatchingSymbols,
    ReqMktData,
    ReqNewsArticle,
    ReqNewsBulletins,
    ReqNewsProviders,
    ReqOpenOrders,
    ReqPnL,
    ReqPnLSingle,
    ReqPositions,
    ReqPositionsMulti,
    ReqRealTimeBars,
    ReqScannerParameters,
    ReqScannerSubscription,
    ReqSecDefOptParams,
    StartApi,
    Unsupported,
)

UNSET_DOUBLE = 1.7976931348623157e308


class DecodeError(ValueError):
    """A request's fields do not match the layout the client is known to send."""


class Cursor:
    """Reads fields one at a time, converting the client's encodings (``""`` = unset)."""

    def __init__(self, fields: list[str], start: int = 1) -> None:
        self._fields = fields
        self._pos = start

    def str(self) -> str:
        try:
            value = self._fields[self._pos]
        except IndexError:
            raise DecodeError(f"message ended after {self._pos} fields") from None
        self._pos += 1
        return value

    def int(self, default: int = 0) -> int:
        text = self.str()
        if not text:
            return default
        try:
            return int(float(text)) if "." in text else int(text)
        except ValueError:
            raise DecodeError(f"field {self._pos - 1} is not an integer: {text!r}") from None

    def float(self) -> float | None:
        """A float, or None when unset (``""``, UNSET_DOUBLE) or ``Infinite``."""
        text = self.str()
        if not text:
            return None
        if text == "Infinite":
            return float("inf")
        try:
            value = float(text)
        except ValueError:
            raise DecodeError(f"field {self._pos - 1} is not a number: {text!r}") from None
        return None if value >= UNSET_DOUBLE else value

    def bool(self) -> bool:
        text = self.str()
        return text not in ("", "0", "false", "False")

    def skip(self, n: int) -> None:
        self._pos += n

    @property
    def remaining(self) -> int:
        return len(self._fields) - self._pos


def _contract(cur: Cursor) -> ContractRef:
    """The C12 contract block."""
    return ContractRef(
        con_id=cur.int(),
        symbol=cur.str(),
        sec_type=cur.str(),
        last_trade_date=cur.str(),
        strike=cur.float(),
        right=cur.str(),
        multiplier=cur.str(),
        exchange=cur.str(),
        primary_exchange=cur.str(),
        currency=cur.str(),
        local_symbol=cur.str(),
        trading_class=cur.str(),
    )


# Names of every request ib_async 2.1.0 can send, for error messages about unsupported ones.
REQUEST_NAMES: dict[int, str] = {
    1: "reqMktData", 2: "cancelMktData", 3: "placeOrder", 4: "cancelOrder",
    5: "reqOpenOrders", 6: "reqAccountUpdates", 7: "reqExecutions", 8: "reqIds",
    9: "reqContractDetails", 10: "reqMktDepth", 11: "cancelMktDepth",
    12: "reqNewsBulletins", 13: "cancelNewsBulletins", 14: "setServerLogLevel",
    15: "reqAutoOpenOrders", 16: "reqAllOpenOrders", 17: "reqManagedAccts",
    18: "requestFA", 19: "replaceFA", 20: "reqHistoricalData", 21: "exerciseOptions",
    22: "reqScannerSubscription", 23: "cancelScannerSubscription",
    24: "reqScannerParameters", 25: "cancelHistoricalData", 49: "reqCurrentTime",
    50: "reqRealTimeBars", 51: "cancelRealTimeBars", 52: "reqFundamentalData",
    53: "cancelFundamentalData", 54: "calculateImpliedVolatility",
    55: "calculateOptionPrice", 56: "cancelCalculateImpliedVolatility",
    57: "cancelCalculateOptionPrice", 58: "reqGlobalCancel", 59: "reqMarketDataType",
    61: "reqPositions", 62: "reqAccountSummary", 63: "cancelAccountSummary",
    64: "cancelPositions", 65: "verifyRequest", 66: "verifyMessage",
    67: "queryDisplayGroups", 68: "subscribeToGroupEvents", 69: "updateDisplayGroup",
    70: "unsubscribeFromGroupEvents", 71: "startApi", 72: "verifyAndAuthRequest",
    73: "verifyAndAuthMessage", 74: "reqPositionsMulti", 75: "cancelPositionsMulti",
    76: "reqAccountUpdatesMulti", 77: "cancelAccountUpdatesMulti",
    78: "reqSecDefOptParams", 79: "reqSoftDollarTiers", 80: "reqFamilyCodes",
    81: "reqMatchingSymbols", 82: "reqMktDepthExchanges", 83: "reqSmartComponents",
    84: "reqNewsArticle", 85: "reqNewsProviders", 86: "reqHistoricalNews",
    87: "reqHeadTimeStamp", 88: "reqHistogramData", 89: "cancelHistogramData",
    90: "cancelHeadTimeStamp", 91: "reqMarketRule", 92: "reqPnL", 93: "cancelPnL",
    94: "reqPnLSingle", 95: "cancelPnLSingle", 96: "reqHistoricalTicks",
    97: "reqTickByTickData", 98: "cancelTickByTickData", 99: "reqCompletedOrders",
    100: "reqWshMetaData", 101: "cancelWshMetaData", 102: "reqWshEventData",
    103: "cancelWshEventData", 104: "reqUserInfo",
}  # fmt: skip

# Where the reqId sits in unsupported requests that carry one, so the error reaches the
# caller's pending future instead of leaving it to time out.
_UNSUPPORTED_REQ_ID_POS: dict[int, int] = {
    10: 2, 22: 1, 52: 2, 54: 2, 55: 2, 78: 1, 79: 1, 83: 1, 84: 1, 86: 1, 88: 1, 96: 1,
    97: 1, 100: 1, 102: 1, 104: 1,
}  # fmt: skip


# --- decoders --------------------------------------------------------------------------------


def _place_order(cur: Cursor, version: int) -> PlaceOrder:
    order_id = cur.int()
    contract = _contract(cur)
    cur.skip(2)  # secIdType, secId
    req = PlaceOrder(order_id=order_id, contract=contract)
    req.action = cur.str()
    req.total_quantity = cur.float() or 0.0
    req.order_type = cur.str()
    req.lmt_price = cur.float()
    req.aux_price = cur.float()
    req.tif = cur.str()
    req.oca_group = cur.str()
    req.account = cur.str()
    req.open_close = cur.str()
    req.origin = cur.int()
    req.order_ref = cur.str()
    req.transmit = cur.bool()
    req.parent_id = cur.int()
    cur.skip(4)  # blockOrder, sweepToFill, displaySize, triggerMethod
    req.outside_rth = cur.bool()
    req.hidden = cur.bool()
    if contract.sec_type == "BAG":
        legs = cur.int()
        cur.skip(8 * legs)
        cur.skip(cur.int())  # order combo leg prices
        cur.skip(2 * cur.int())  # smart combo routing params
    cur.skip(2)  # shares allocation, discretionaryAmt
    req.good_after_time = cur.str()
    req.good_till_date = cur.str()
    cur.skip(3)  # faGroup, faMethod, faPercentage
    if version < 177:
        cur.skip(1)  # faProfile
    cur.skip(4)  # modelCode, shortSaleSlot, designatedLocation, exemptCode
    req.oca_type = cur.int()
    # rule80A .. volatilityType (17 fields), then deltaNeutralOrderType, deltaNeutralAuxPrice
    cur.skip(17)
    delta_neutral_type = cur.str()
    cur.skip(1)
    if delta_neutral_type:
        cur.skip(8)
    cur.skip(2)  # continuousUpdate, referencePriceType
    req.trail_stop_price = cur.float()
    req.trailing_percent = cur.float()
    cur.skip(2)  # scaleInitLevelSize, scaleSubsLevelSize
    scale_increment = cur.float()
    if scale_increment is not None and scale_increment > 0:
        cur.skip(7)
    cur.skip(3)  # scaleTable, activeStartTime, activeStopTime
    if cur.str():  # hedgeType
        cur.skip(1)
    cur.skip(4)  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    if cur.bool():  # delta-neutral contract
        cur.skip(3)
    if cur.str():  # algoStrategy
        cur.skip(2 * cur.int())
    cur.skip(1)  # algoId
    req.what_if = cur.bool()
    cur.skip(4)  # orderMiscOptions, solicited, randomizeSize, randomizePrice
    if req.order_type in ("PEG BENCH", "PEGBENCH"):
        cur.skip(5)
    count = cur.int()
    if count > 0:
        req.conditions = tuple(_condition(cur) for _ in range(count))
        req.conditions_ignore_rth = cur.bool()
        req.conditions_cancel_order = cur.bool()
    return req


def _condition(cur: Cursor) -> OrderCondition:
    """One order condition: condType, then that type's fields (ib_async ``order.py``)."""
    cond_type = cur.int()
    if cond_type not in CONDITION_TYPES:
        raise DecodeError(f"unknown order condition type {cond_type}")
    try:
        return from_fields(cond_type, [cur.str() for _ in range(field_count(cond_type))])
    except ConditionError as exc:
        raise DecodeError(str(exc)) from None


def _hist(cur: Cursor, version: int) -> ReqHistoricalData:
    req_id = cur.int()
    contract = _contract(cur)
    cur.skip(1)  # includeExpired
    end = cur.str()
    bar_size = cur.str()
    duration = cur.str()
    use_rth = cur.bool()
    what = cur.str()
    fmt = cur.int(1)
    if contract.sec_type == "BAG":
        cur.skip(4 * cur.int())
    keep = cur.bool()
    return ReqHistoricalData(req_id, contract, end, bar_size, duration, use_rth, what, fmt, keep)


def _mkt_data(cur: Cursor, version: int) -> ReqMktData:
    cur.skip(1)  # version
    req_id = cur.int()
    contract = _contract(cur)
    if contract.sec_type == "BAG":
        cur.skip(4 * cur.int())
    if cur.bool():  # delta-neutral contract
        cur.skip(3)
    ticks = cur.str()
    snapshot = cur.bool()
    regulatory = cur.bool()
    return ReqMktData(req_id, contract, ticks, snapshot, regulatory)


def _contract_details(cur: Cursor, version: int) -> ReqContractDetails:
    cur.skip(1)
    req_id = cur.int()
    contract = _contract(cur)
    include_expired = cur.bool()
    return ReqContractDetails(req_id, contract, include_expired, cur.str(), cur.str())


def _real_time_bars(cur: Cursor, version: int) -> ReqRealTimeBars:
    cur.skip(1)
    req_id = cur.int()
    contract = _contract(cur)
    return ReqRealTimeBars(req_id, contract, cur.int(5), cur.str(), cur.bool())


def _executions(cur: Cursor, version: int) -> ReqExecutions:
    cur.skip(1)
    return ReqExecutions(
        req_id=cur.int(),
        client_id=cur.int(),
        account=cur.str(),
        time=cur.str(),
        symbol=cur.str(),
        sec_type=cur.str(),
        exchange=cur.str(),
        side=cur.str(),
    )


def _cancel_order(cur: Cursor, version: int) -> CancelOrder:
    cur.skip(1)
    order_id = cur.int()
    manual = cur.str() if version >= 169 and cur.remaining else ""
    return CancelOrder(order_id, manual)


def _head_timestamp(cur: Cursor, version: int) -> ReqHeadTimestamp:
    req_id = cur.int()
    contract = _contract(cur)
    cur.skip(1)  # includeExpired
    use_rth = cur.bool()
    return ReqHeadTimestamp(req_id, contract, use_rth, cur.str(), cur.int(1))


def _scanner_subscription(cur: Cursor, version: int) -> ReqScannerSubscription:
    req_id, rows = cur.int(), cur.int(-1)
    instrument, location, code = cur.str(), cur.str(), cur.str()
    above, below = cur.float(), cur.float()
    # The other filters (volume, market cap, ratings, ...) and the tag-value lists: ignored.
    return ReqScannerSubscription(req_id, rows, instrument, location, code, above, below)


def _versioned(factory: Callable[..., object], *readers: str) -> Callable[[Cursor, int], object]:
    """Decoder for the common shape ``id, version, a, b, ...`` with simple field types."""

    def decode(cur: Cursor, version: int) -> object:
        cur.skip(1)
        return factory(*(getattr(cur, r)() for r in readers))

    return decode


def _plain(factory: Callable[..., object], *readers: str) -> Callable[[Cursor, int], object]:
    """Decoder for requests that have no version field after the message id."""

    def decode(cur: Cursor, version: int) -> object:
        return factory(*(getattr(cur, r)() for r in readers))

    return decode


_DECODERS: dict[int, Callable[[Cursor, int], object]] = {
    1: _mkt_data,
    2: _versioned(CancelMktData, "int"),
    3: _place_order,
    4: _cancel_order,
    5: _versioned(ReqOpenOrders),
    6: _versioned(ReqAccountUpdates, "bool", "str"),
    7: _executions,
    8: _versioned(ReqIds, "int"),
    9: _contract_details,
    12: _versioned(ReqNewsBulletins, "bool"),
    13: _versioned(CancelNewsBulletins),
    15: _versioned(ReqAutoOpenOrders, "bool"),
    16: _versioned(ReqAllOpenOrders),
    17: _versioned(ReqManagedAccts),
    20: _hist,
    22: _scanner_subscription,
    23: _versioned(CancelScannerSubscription, "int"),
    24: _versioned(ReqScannerParameters),
    25: _versioned(CancelHistoricalData, "int"),
    49: _versioned(ReqCurrentTime),
    50: _real_time_bars,
    51: _versioned(CancelRealTimeBars, "int"),
    58: _versioned(ReqGlobalCancel),
    59: _versioned(ReqMarketDataType, "int"),
    61: _versioned(ReqPositions),
    62: _versioned(ReqAccountSummary, "int", "str", "str"),
    63: _versioned(CancelAccountSummary, "int"),
    64: _versioned(CancelPositions),
    71: _versioned(StartApi, "int", "str"),
    74: _versioned(ReqPositionsMulti, "int", "str", "str"),
    75: _versioned(CancelPositionsMulti, "int"),
    76: _versioned(ReqAccountUpdatesMulti, "int", "str", "str", "bool"),
    77: _versioned(CancelAccountUpdatesMulti, "int"),
    81: _plain(ReqMatchingSymbols, "int", "str"),
    84: _plain(ReqNewsArticle, "int", "str", "str"),
    85: _plain(ReqNewsProviders),
    86: _plain(ReqHistoricalNews, "int", "int", "str", "str", "str", "int"),
    87: _head_timestamp,
    90: _plain(CancelHeadTimestamp, "int"),
    91: _plain(ReqMarketRule, "int"),
    92: _plain(ReqPnL, "int", "str", "str"),
    93: _plain(CancelPnL, "int"),
    94: _plain(ReqPnLSingle, "int", "str", "str", "int"),
    95: _plain(CancelPnLSingle, "int"),
    99: _plain(ReqCompletedOrders, "bool"),
    78: _plain(ReqSecDefOptParams, "int", "str", "str", "str", "int"),
}


def decode_request(fields: list[str], server_version: int) -> object:
    """Turn one client message into a typed request (``Unsupported`` for the rest)."""
    if not fields:
        raise DecodeError("empty message")
    try:
        msg_id = int(fields[0])
    except ValueError:
        raise DecodeError(f"message id {fields[0]!r} is not an integer") from None
    decoder = _DECODERS.get(msg_id)
    if decoder is None:
        name = REQUEST_NAMES.get(msg_id, f"unknown request {msg_id}")
        req_id = -1
        pos = _UNSUPPORTED_REQ_ID_POS.get(msg_id)
        if pos is not None and pos < len(fields):
            try:
                req_id = int(fields[pos])
            except ValueError:
                req_id = -1
        return Unsupported(msg_id, name, req_id, fields)
    return decoder(Cursor(fields), server_version)
