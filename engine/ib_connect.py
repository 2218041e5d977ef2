"""One connect attempt to the gateway, what decides whether to go on trying, and the
broker's listeners before a trading engine listens.

ib_async's connect is ended at once when the gateway refuses the client id (326); a refusal
that lasts gives up (ClientIdInUse), and the account is chosen (never a live one unless live
trading is enabled). `IBBroker.run` holds the loop around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from ib_async import IB

from engine.ports import AccountNotFound, ClientIdInUse, LiveTradingRefused

log = logging.getLogger("engine.broker")

CLIENT_ID_IN_USE = 326
CLIENT_ID_IN_USE_SECONDS = 120.0
CONNECT_ERRORS = (OSError, TimeoutError, ConnectionError)


class IBConnector:
    """Connect attempts to one gateway with one client id."""

    def __init__(
        self, ib: IB, host: str, port: int, client_id: int, account: str, allow_live: bool,
        connect_timeout: float,
    ) -> None:
        self._ib = ib
        self.host, self.port, self.client_id = host, port, client_id
        self._account_setting = account
        self._allow_live = allow_live
        self._timeout = connect_timeout
        self._refused = asyncio.Event()  # 326 during the current attempt
        self._refused_since: float | None = None  # monotonic, first 326 in a row
        self.last_attempt: float | None = None  # monotonic; the reconnect loop's pulse

    def client_id_refused(self) -> None:
        """The gateway answered 326: the attempt under way fails at once."""
        self._refused.set()

    async def connect(self) -> None:
        """ib_async's connect, ended at once when the gateway refuses the client id (326):
        ib_async itself would wait out its whole timeout for an API that will not start."""
        self._refused.clear()
        self.last_attempt = time.monotonic()
        connecting = asyncio.ensure_future(self._ib.connectAsync(
            self.host,
            self.port,
            clientId=self.client_id,
            timeout=self._timeout,
            account=self._account_setting,
            raiseSyncErrors=True,
        ))
        refused = asyncio.ensure_future(self._refused.wait())
        try:
            await asyncio.wait({connecting, refused}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            refused.cancel()
            if not connecting.done():
                connecting.cancel()
                with contextlib.suppress(asyncio.CancelledError, *CONNECT_ERRORS):
                    await connecting
        if self._refused.is_set():
            raise ConnectionError(f"client id {self.client_id} already in use (326)")
        connecting.result()

    def connected(self) -> None:
        self._refused_since = None

    def check_refused(self, first_refusal: Callable[[int, float], None]) -> None:
        """After a failed attempt: tell the first 326 in a row (`first_refusal(client_id,
        give_up_in)`); give up (ClientIdInUse) once it has lasted too long: another program,
        or a second tradebot, is using IB_CLIENT_ID."""
        if not self._refused.is_set():
            self._refused_since = None  # refused for another reason: not in a row
            return
        now = time.monotonic()
        if self._refused_since is None:
            self._refused_since = now
            first_refusal(self.client_id, CLIENT_ID_IN_USE_SECONDS)
        elif now - self._refused_since >= CLIENT_ID_IN_USE_SECONDS:
            raise ClientIdInUse(
                f"IB_CLIENT_ID: client id {self.client_id} is in use at {self.host}:{self.port} "
                f"(error 326 for {now - self._refused_since:.0f}s): another program "
                "or a second tradebot is connected with it; stop it or choose another id"
            )

    def choose_account(self) -> str:
        """The account to trade: IB_ACCOUNT, or the gateway's first. Raises AccountNotFound,
        or LiveTradingRefused for a live account without TRADING_MODE=live (disconnected)."""
        accounts = self._ib.managedAccounts()
        if self._account_setting:
            if self._account_setting not in accounts:
                self._ib.disconnect()
                raise AccountNotFound(
                    f"IB_ACCOUNT {self._account_setting} is not among the gateway's accounts "
                    f"({', '.join(accounts) or 'none'})"
                )
            account = self._account_setting
        else:
            account = accounts[0] if accounts else ""
        if not account.startswith("DU") and not self._allow_live:
            self._ib.disconnect()
            raise LiveTradingRefused(
                f"account {account} is a live account; set TRADING_MODE=live to trade real money"
            )
        return account


class _NotListening:
    """The listener until run() is given one: a handler firing before would be a bug."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"IBBroker.{name}: run(listener) has not been called")


NOT_LISTENING: Any = _NotListening()


class OneOffListener:
    """The listener of a one-off command (connect_once): IB's errors and dropped handlers are
    logged; everything a trading engine would act on is not its business."""

    def on_error(self, code: int, message: str, req_id: int, order_ref: str | None) -> None:
        log.info("IB error %s (request %s): %s", code, req_id, message)

    def on_handler_failed(self, kind: str, error: BaseException) -> None:
        log.error("the %s handler failed", kind, exc_info=error)

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None
