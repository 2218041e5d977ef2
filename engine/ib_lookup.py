"""Contract lookups at IB: the instruments of SYMBOLS, and the contract of a position.

Each asks IB's contract details and files what it finds in the broker's `ContractBook`.
"""

from __future__ import annotations

import asyncio

from ib_async import IB, Contract
from ib_async import Position as IBPosition

from engine.domain import Instrument
from engine.ib_contracts import ContractBook, contract_info, make_contract


class ContractLookup:
    def __init__(self, ib: IB, contracts: ContractBook, request_timeout: float) -> None:
        self._ib = ib
        self._contracts = contracts
        self._timeout = request_timeout

    async def qualify(self, instruments: tuple[Instrument, ...]) -> list[str]:
        """Look every instrument up (one contract-details request each, all at once);
        return the symbols IB does not know or finds ambiguous."""
        found = await asyncio.gather(
            *(
                asyncio.wait_for(self._ib.reqContractDetailsAsync(make_contract(i)),
                                 self._timeout)
                for i in instruments
            ),
            return_exceptions=True,
        )
        unknown = []
        for instrument, details in zip(instruments, found, strict=True):
            if isinstance(details, ConnectionError | TimeoutError):
                raise details
            if isinstance(details, BaseException) or not details:
                unknown.append(instrument.symbol)
                continue
            if instrument.follows_front_month:
                self._contracts.set_chain(instrument.symbol, [
                    (d.contract, contract_info(instrument, d)) for d in details
                ])
                continue
            if len(details) != 1:
                unknown.append(instrument.symbol)
                continue
            self._contracts.add(
                instrument.symbol, details[0].contract, contract_info(instrument, details[0])
            )
        return unknown

    async def position_contract(self, symbol: str, position: IBPosition) -> bool:
        """File the full contract of a position held in `symbol` (position contracts carry
        no routing exchange); False if IB does not find it."""
        details = await asyncio.wait_for(
            self._ib.reqContractDetailsAsync(Contract(conId=position.contract.conId)),
            self._timeout,
        )
        if not details:
            return False
        contract = details[0].contract
        if contract.secType in ("STK", "OPT"):
            contract.exchange = "SMART"  # routed, as the bot's own are
        self._contracts.add(symbol, contract)
        return True
