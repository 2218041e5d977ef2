"""What a trader looks up at IB besides trading: quotes, news headlines, the market scanner,
option chains and option quotes with their greeks, the account summary.

Request and answer, in domain types; nothing here changes an order or a position. `IBBroker`
owns the connection and hands its `IB` and contract book in.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from ib_async import (
    IB,
    Contract,
    ContractDetails,
    Option,
    RequestError,
    ScannerSubscription,
    Stock,
    Ticker,
)

from engine import ib_translate as translate
from engine.domain import (
    AccountSummary,
    Headline,
    Instrument,
    NewsProvider,
    OptionChain,
    OptionQuote,
    ScanRow,
)
from engine.ib_contracts import ContractBook, make_contract
from engine.ports import BrokerRequestError, NoNewsSubscription

SCAN_LOCATION = "STK.US.MAJOR"  # the scanner ranks US stocks
NEWS_NOT_ALLOWED = 10276  # IB: "News feed is not allowed" (no subscription to the provider)


class IBResearch:
    """Quotes, news, the scanner and the account summary through ib_async."""

    def __init__(self, ib: IB, contracts: ContractBook, request_timeout: float) -> None:
        self._ib = ib
        self._contracts = contracts
        self._timeout = request_timeout
        self._scan_codes: list[str] | None = None
        self._scan_codes_lock = asyncio.Lock()
        self._providers_lock = asyncio.Lock()
        # One account-summary subscription: IB allows two at once, ib_async opens one per call
        # until the first answer is in.
        self._summary_lock = asyncio.Lock()
        self._summary_unanswered = False  # a summary request timed out on this connection

    async def quote(self, symbol: str) -> tuple[float | None, float | None, float | None]:
        """Bid, ask and last from a market-data snapshot."""
        tickers = await self._ib.reqTickersAsync(self._contracts[symbol])
        if not tickers:
            return None, None, None
        ticker, price = tickers[0], translate.price
        return price(ticker.bid), price(ticker.ask), price(ticker.last)

    # --- news ------------------------------------------------------------------------------

    async def news_providers(self) -> list[NewsProvider]:
        """One request at a time: ib_async keeps one pending (a second /news at once would
        leave the first waiting out its timeout)."""
        async with self._providers_lock:
            providers = await asyncio.wait_for(self._ib.reqNewsProvidersAsync(), self._timeout)
        return [NewsProvider(p.code, p.name) for p in providers]

    async def headlines(self, symbol: str, n: int, providers: Sequence[str]) -> list[Headline]:
        contract = self._contracts[symbol]
        if not providers:
            raise NoNewsSubscription()
        try:
            # ib_async waits 4 s for the answer and returns None without one.
            news = await self._ib.reqHistoricalNewsAsync(
                contract.conId, "+".join(providers), "", "", n
            )
        except RequestError as exc:
            if exc.code == NEWS_NOT_ALLOWED:
                raise NoNewsSubscription(exc.message) from None
            raise BrokerRequestError(exc.code, exc.message) from None
        if news is None:
            raise TimeoutError("IB did not answer the news request")
        return [translate.headline(h) for h in news]

    # --- market scanner ----------------------------------------------------------------------

    async def scan_codes(self) -> list[str]:
        """Asked once: IB's scanner parameters are a megabyte or two of XML, and fixed. Two
        asking at once share the one request (ib_async keeps one pending: a second would
        leave the first waiting for ever)."""
        async with self._scan_codes_lock:
            if self._scan_codes is None:
                xml = await asyncio.wait_for(self._ib.reqScannerParametersAsync(), self._timeout)
                try:
                    codes = [e.text for e in ET.fromstring(xml).iter("scanCode") if e.text]
                except ET.ParseError as exc:
                    raise BrokerRequestError(
                        0, f"the scanner parameters are not XML: {exc}") from None
                self._scan_codes = list(dict.fromkeys(codes))  # some are under several groups
        return list(self._scan_codes)

    async def scan(self, code: str, n: int) -> list[ScanRow]:
        subscription = ScannerSubscription(
            instrument="STK", locationCode=SCAN_LOCATION, scanCode=code, numberOfRows=n
        )
        try:
            found = await asyncio.wait_for(
                self._ib.reqScannerDataAsync(subscription), self._timeout
            )
        except RequestError as exc:
            raise BrokerRequestError(exc.code, exc.message) from None
        contracts = [d.contractDetails.contract for d in found]
        for contract in contracts:
            contract.exchange = contract.exchange or "SMART"  # for the snapshot
        by_con_id = await self._snapshots(contracts)
        return [
            translate.scan_row(i + 1, c.symbol, by_con_id.get(c.conId))
            for i, c in enumerate(contracts)
        ]

    # --- options -------------------------------------------------------------------------

    async def option_chain(self, underlying: str) -> tuple[OptionChain, float | None]:
        """The underlying stock's option chain and its last price (a snapshot; None without
        one). Raises KeyError when IB knows no such stock or lists no options for it."""
        stock = await self._qualified(Stock(underlying, "SMART", "USD"))
        if stock is None:
            raise KeyError(underlying)
        try:
            rows = await asyncio.wait_for(
                self._ib.reqSecDefOptParamsAsync(stock.symbol, "", "STK", stock.conId),
                self._timeout,
            )
        except RequestError as exc:
            raise BrokerRequestError(exc.code, exc.message) from None
        ticker = (await self._snapshots([stock])).get(stock.conId)
        chain = translate.option_chain(underlying, rows or [])
        if chain is None:
            raise KeyError(underlying)
        last = None
        if ticker is not None:
            last = translate.price(ticker.last) or translate.price(ticker.close)
        return chain, last

    async def option_quotes(self, options: Sequence[Instrument]) -> list[OptionQuote | None]:
        """A snapshot of each option, greeks included; None for one IB does not know.

        Options of one expiry are qualified by one contract-details request for the whole
        expiry: a chain's twenty would otherwise be twenty requests in ib_async's one throttle
        (45 a second), which orders share."""
        contracts: list[Contract | None] = [None] * len(options)
        by_expiry: dict[tuple[str, str, str, str], list[int]] = {}
        for i, option in enumerate(options):
            key = (option.ib_symbol, option.expiry, option.exchange, option.currency)
            by_expiry.setdefault(key, []).append(i)
        for indices in by_expiry.values():
            if len(indices) == 1:
                contracts[indices[0]] = await self._qualified(make_contract(options[indices[0]]))
                continue
            listed = await self._expiry_options(options[indices[0]])
            for i in indices:
                contracts[i] = listed.get(_option_key(options[i].strike, options[i].right))
        by_con_id = await self._snapshots([c for c in contracts if c is not None])
        return [
            translate.option_quote(option.symbol, by_con_id[contract.conId])
            if contract is not None and contract.conId in by_con_id else None
            for option, contract in zip(options, contracts, strict=True)
        ]

    async def _expiry_options(self, option: Instrument) -> dict[tuple[float, str], Contract]:
        """Every option of `option`'s underlying and expiry, by (strike, right): one request
        with the strike and right left open. A (strike, right) listed twice (two trading
        classes) is left out, as `_qualified` leaves out an ambiguous contract."""
        details = await self._details(Option(option.ib_symbol, option.expiry,
                                             exchange=option.exchange, currency=option.currency))
        found: dict[tuple[float, str], Contract] = {}
        ambiguous: set[tuple[float, str]] = set()
        for d in details:
            contract = d.contract
            if contract is None:
                continue
            key = _option_key(contract.strike, contract.right)
            if key in found:
                ambiguous.add(key)
            contract.exchange = option.exchange or contract.exchange  # SMART, for the snapshot
            found[key] = contract
        return {key: c for key, c in found.items() if key not in ambiguous}

    async def _qualified(self, contract: Contract) -> Contract | None:
        """The one contract IB has for `contract` (None for none, or for several)."""
        details = await self._details(contract)
        if len(details) != 1:
            return None
        found = details[0].contract
        found.exchange = contract.exchange or found.exchange  # SMART, for the snapshot
        return found

    async def _details(self, query: Contract) -> list[ContractDetails]:
        """IB's contract details for `query`; none for what IB does not define (error 200)."""
        try:
            return await asyncio.wait_for(self._ib.reqContractDetailsAsync(query), self._timeout)
        except RequestError as exc:
            if exc.code == 200:  # no security definition
                return []
            raise BrokerRequestError(exc.code, exc.message) from None

    async def _snapshots(self, contracts: Sequence[Contract]) -> dict[int, Ticker]:
        """A market-data snapshot of each contract, by conId (one IB did not answer for is
        left out)."""
        if not contracts:
            return {}
        try:
            tickers = await asyncio.wait_for(
                self._ib.reqTickersAsync(*contracts), self._timeout
            )
        except RequestError as exc:
            raise BrokerRequestError(exc.code, exc.message) from None
        return {t.contract.conId: t for t in tickers if t.contract is not None}

    # --- the account -------------------------------------------------------------------------

    async def account_summary(self, account: str) -> AccountSummary:
        """The first call subscribes to IB's account summary (ib_async keeps the values, and IB
        sends the changed ones every 3 minutes); later calls read what ib_async holds."""
        async with self._summary_lock:
            if self._summary_unanswered and not self._ib.wrapper.acctSummary:
                raise TimeoutError("IB has not answered the account summary request yet")
            try:
                values = await asyncio.wait_for(
                    self._ib.accountSummaryAsync(account), self._timeout
                )
            except TimeoutError:
                # Its subscription stays open at IB, which allows two: asked again only after
                # a reconnect (a late answer still fills ib_async's values meanwhile).
                self._summary_unanswered = True
                raise
        return translate.account_summary(values)

    def connection_lost(self) -> None:
        """Subscriptions die with the connection: the next account summary asks afresh."""
        self._summary_unanswered = False


def _option_key(strike: float, right: str) -> tuple[float, str]:
    """(strike, "C" or "P"): IB may spell the right CALL or PUT."""
    right = right.upper()
    return round(strike, 4), {"CALL": "C", "PUT": "P"}.get(right, right)
