"""The IB contracts the broker adapter knows, by the engine's symbol, and the engine's name for
any contract IB reports (the configured symbol for the bot's own, an unmistakable one for others).
"""

from __future__ import annotations

from datetime import date

from ib_async import Contract, ContractDetails, Crypto, Forex, Future, Option, Stock

from engine.domain import Instrument, expiry_date, option_name
from engine.hours import TradingHours
from engine.ib_translate import multiplier
from engine.ports import ContractInfo


def make_contract(instrument: Instrument) -> Contract:
    if instrument.sec_type == "CASH":
        return Forex(instrument.symbol, exchange=instrument.exchange)
    if instrument.sec_type == "CRYPTO":
        return Crypto(instrument.symbol, instrument.exchange, instrument.currency)
    if instrument.sec_type == "FUT":
        # Without an expiry IB lists every month (the chain); the engine picks the front.
        return Future(instrument.symbol, instrument.expiry, exchange=instrument.exchange,
                      currency=instrument.currency)
    if instrument.sec_type == "OPT":
        return Option(instrument.ib_symbol, instrument.expiry, instrument.strike,
                      instrument.right, instrument.exchange, currency=instrument.currency)
    return Stock(instrument.symbol, instrument.exchange, instrument.currency)


def contract_info(instrument: Instrument, details: ContractDetails) -> ContractInfo:
    zone = details.timeZoneId or "UTC"
    return ContractInfo(
        instrument=instrument,
        con_id=details.contract.conId,
        min_tick=details.minTick or 0.01,
        time_zone=zone,
        liquid_hours=TradingHours.parse(details.liquidHours, zone),
        trading_hours=TradingHours.parse(details.tradingHours, zone),
        long_name=details.longName,
        local_symbol=details.contract.localSymbol,
        expiry=_expiry(details.contract.lastTradeDateOrContractMonth),
        multiplier=multiplier(details.contract.multiplier),
    )


def _expiry(text: str) -> date | None:
    """A future's or an option's last trading day from IB's YYYYMMDD (a bare YYYYMM month
    says too little)."""
    return expiry_date(text[:8])


class ContractBook:
    """The contracts orders can be placed for: the configured instruments, once qualified,
    and the contracts of positions the bot was asked to close. A front-month future's symbol
    names one month of its chain at a time: the other months go by their own names (ESM7),
    so a position in one is never taken for the other."""

    def __init__(self) -> None:
        self._contracts: dict[str, Contract] = {}
        self._info: dict[str, ContractInfo] = {}
        self._symbol_by_con_id: dict[int, str] = {}
        self._other_names: dict[int, str] = {}  # conId -> the name given to a contract not ours
        self._other_con_ids: dict[str, int] = {}  # and back: one contract a name
        self._chains: dict[str, dict[int, tuple[Contract, ContractInfo]]] = {}

    def add(self, symbol: str, contract: Contract, info: ContractInfo | None = None) -> None:
        old = self._contracts.get(symbol)
        if old is not None and old.conId != contract.conId:
            self._symbol_by_con_id.pop(old.conId, None)
        self._contracts[symbol] = contract
        self._symbol_by_con_id[contract.conId] = symbol
        if info is not None:
            self._info[symbol] = info

    def set_chain(self, symbol: str, months: list[tuple[Contract, ContractInfo]]) -> None:
        """A front-month future's listed months; the month followed gets its fresh details."""
        self._chains[symbol] = {contract.conId: (contract, info) for contract, info in months}
        followed = self._contracts.get(symbol)
        if followed is not None and followed.conId in self._chains[symbol]:
            self.add(symbol, *self._chains[symbol][followed.conId])

    def chain(self, symbol: str) -> tuple[ContractInfo, ...]:
        return tuple(info for _, info in self._chains.get(symbol, {}).values())

    def follow(self, symbol: str, con_id: int) -> None:
        self.add(symbol, *self._chains[symbol][con_id])

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._contracts

    def __getitem__(self, symbol: str) -> Contract:
        return self._contracts[symbol]

    def info(self, symbol: str) -> ContractInfo | None:
        """What was learnt of a configured instrument's contract (none for a position's)."""
        return self._info.get(symbol)

    def symbol(self, contract: Contract) -> str:
        """The engine's name for a contract: the configured symbol for the bot's contracts;
        for others a name that cannot be mistaken for one of them, nor for another contract
        (SPX and SPXW options of one expiry, strike and right go by their trading class)."""
        known = self._symbol_by_con_id.get(contract.conId) or self._other_names.get(
            contract.conId)
        if known:
            return known
        if contract.secType == "CASH":
            name = f"{contract.symbol}{contract.currency}"
        elif contract.secType in ("STK", "CRYPTO"):
            name = contract.symbol
        elif contract.secType == "OPT" and contract.strike and contract.right:
            name = option_name(contract.tradingClass or contract.symbol,
                               contract.lastTradeDateOrContractMonth, contract.strike,
                               contract.right[0])
        else:
            name = contract.localSymbol or f"{contract.symbol} {contract.secType}"
        if name in self._contracts or self._other_con_ids.get(name, contract.conId) != (
            contract.conId
        ):  # the bot's symbol, or another's name, but another contract
            name = f"{name} ({contract.secType} {contract.conId})"
        if contract.conId:
            self._other_names[contract.conId] = name
            self._other_con_ids[name] = contract.conId
        return name
