"""The one implementation of every command: parse arguments, ask the control API, build a reply.

Both transports (Telegram and the console) call `Commands.execute` and only differ in how they
show a `Reply`, `Photo` or `Confirm`. Acting commands that can hurt (/flatten, /cancelall) come
back as a `Confirm` whose `run` is called only after the user said yes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo

from bot import charts
from bot.messages.account import account_doc
from bot.messages.document import Doc
from bot.messages.kill_switch import cancel_doc, flatten_doc
from bot.messages.news import news_doc, no_news_subscription_doc
from bot.messages.options import chain_doc, no_such_expiry_doc, option_quote_doc
from bot.messages.scanner import scan_codes_doc, scan_doc
from bot.messages.status import (
    error_doc,
    health_doc,
    help_doc,
    logs_doc,
    paused_doc,
    resumed_doc,
    risk_doc,
    status_doc,
)
from bot.messages.trading import orders_doc, pnl_doc, positions_doc, quote_doc, trades_doc
from engine.config import option_strike
from engine.control import CommandRefused, ControlAPI
from engine.domain import Instrument, expiry_date
from engine.kill_switch import (
    CANCEL_WAIT_SECONDS,
    FLATTEN_WAIT_SECONDS,
    POSITION_SETTLE_SECONDS,
    ProgressCallback,
)
from engine.ports import NoNewsSubscription
from engine.reports import ChainBusy, NoSuchExpiry, ScanBusy

log = logging.getLogger(__name__)

# The longest a flatten can take (cancel, settle, close) plus a margin: at shutdown, a running
# flatten is given this long before the engine stops.
ACTION_GRACE = CANCEL_WAIT_SECONDS + POSITION_SETTLE_SECONDS + FLATTEN_WAIT_SECONDS + 5.0
MAX_TRADES = 100
MAX_LOGS = 50
MAX_NEWS = 20
MAX_SCAN = 50  # IB's scanner gives at most 50 rows


@dataclass(frozen=True, slots=True)
class Reply:
    doc: Doc


@dataclass(frozen=True, slots=True)
class Photo:
    png: bytes
    caption: Doc


@dataclass(frozen=True, slots=True)
class Confirm:
    """An action waiting for a yes: `run(progress, by)` does it and returns the final report;
    `by` names who said yes, for the journal."""

    action: str  # "flatten", "cancelall all"
    question: str  # what a yes will do
    working: str  # "flattening"
    run: Callable[[ProgressCallback, str], Awaitable[Doc]]


Result = Reply | Photo | Confirm


class UsageError(ValueError):
    """Bad arguments; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    usage: str
    description: str
    acting: bool
    handler: Callable[[Commands, list[str], str], Awaitable[Result]]


def parse(text: str) -> tuple[str, list[str]]:
    """'/Trades@my_bot 5' → ('trades', ['5']); a line without a slash works too (console)."""
    words = text.strip().split()
    if not words:
        return "", []
    name = words[0].lstrip("/").split("@", 1)[0].lower()
    return name, words[1:]


def _count(args: list[str], default: int, maximum: int, command: str) -> int:
    if not args:
        return default
    if len(args) > 1 or not args[0].isdigit() or not 1 <= int(args[0]) <= maximum:
        raise UsageError(f"/{command} takes a whole number from 1 to {maximum}, e.g. /{command} 5")
    return int(args[0])


def _scope(args: list[str], command: str) -> str:
    if not args:
        return "bot"
    if [a.lower() for a in args] == ["all"]:
        return "account"
    raise UsageError(f"/{command} takes nothing or 'all', e.g. /{command} all")


def _no_args(args: list[str], command: str) -> None:
    if args:
        raise UsageError(f"/{command} takes no arguments")


class Commands:
    """Runs commands against a `ControlAPI`; `last_alert_delivered` fills /health's field."""

    def __init__(
        self,
        control: ControlAPI,
        display_tz: tzinfo = UTC,
        last_alert_delivered: Callable[[], datetime | None] | None = None,
    ) -> None:
        self.control = control
        self.tz = display_tz
        self._last_alert_delivered = last_alert_delivered
        self.specs: dict[str, CommandSpec] = {s.name: s for s in _SPECS}
        self.charts = charts.ChartRenderer()

    async def close(self) -> None:
        """Release what commands hold (the chart process)."""
        await self.charts.close()

    def is_acting(self, name: str) -> bool:
        spec = self.specs.get(name)
        return spec is not None and spec.acting

    def menu(self) -> list[tuple[str, str]]:
        """(command, description) for Telegram's command menu."""
        return [(s.name, s.description) for s in _SPECS if s.name != "start"]

    async def execute(self, text: str, by: str) -> Result:
        """Run one command line such as '/trades 5'; `by` names who asked, for the journal."""
        name, args = parse(text)
        spec = self.specs.get(name)
        if spec is None:
            shown = text.strip().split()[0] if text.strip() else "(empty)"
            return Reply(error_doc(f"Unknown command {shown}: send /help"))
        try:
            return await spec.handler(self, args, by)
        except (UsageError, CommandRefused) as exc:
            return Reply(error_doc(str(exc)))
        except Exception as exc:  # the engine failed: say so, keep the bot alive
            log.exception("command /%s failed", name)
            return Reply(error_doc(f"/{name} failed: {type(exc).__name__}: {exc}"))

    # --- handlers, one per command -----------------------------------------------------------

    async def _help(self, args: list[str], by: str) -> Result:
        return Reply(
            help_doc(
                (f"{s.name} {s.usage}".strip(), s.description, s.acting)
                for s in _SPECS
                if s.name != "start"
            )
        )

    async def _status(self, args: list[str], by: str) -> Result:
        _no_args(args, "status")
        return Reply(status_doc(await self.control.status(), self.tz))

    async def _positions(self, args: list[str], by: str) -> Result:
        _no_args(args, "positions")
        return Reply(positions_doc(await self.control.positions()))

    async def _orders(self, args: list[str], by: str) -> Result:
        _no_args(args, "orders")
        return Reply(orders_doc(await self.control.orders()))

    async def _trades(self, args: list[str], by: str) -> Result:
        n = _count(args, 10, MAX_TRADES, "trades")
        return Reply(trades_doc(await self.control.trades(n), self.tz))

    async def _pnl(self, args: list[str], by: str) -> Result:
        _no_args(args, "pnl")
        return Reply(pnl_doc(await self.control.pnl()))

    async def _risk(self, args: list[str], by: str) -> Result:
        _no_args(args, "risk")
        return Reply(risk_doc(await self.control.risk(), self.tz))

    async def _health(self, args: list[str], by: str) -> Result:
        _no_args(args, "health")
        report = await self.control.health()
        if self._last_alert_delivered is not None:
            report = replace(report, last_alert_delivered=self._last_alert_delivered())
        return Reply(health_doc(report, self.tz))

    async def _logs(self, args: list[str], by: str) -> Result:
        n = _count(args, 20, MAX_LOGS, "logs")
        return Reply(logs_doc(await self.control.logs(n), self.tz))

    async def _quote(self, args: list[str], by: str) -> Result:
        if len(args) in (3, 4) or (len(args) == 1 and ":OPT:" in args[0].upper()):
            return await self._option_quote(args)
        if len(args) != 1:
            raise UsageError(
                "/quote takes one symbol or an option, e.g. /quote AAPL or "
                "/quote AAPL 20261218 200 C"
            )
        symbol = args[0].upper()
        try:
            quote = await self.control.quote(symbol)
        except KeyError:
            return Reply(error_doc(f"Unknown symbol {symbol}: not one the bot trades"))
        return Reply(quote_doc(quote, self.tz))

    async def _news(self, args: list[str], by: str) -> Result:
        example = "e.g. /news AAPL 5"
        if not 1 <= len(args) <= 2:
            raise UsageError(f"/news takes a symbol and, if you like, a count: {example}")
        symbol = args[0].upper()
        n = _how_many("/news", args[1], MAX_NEWS, example) if len(args) == 2 else 5
        try:
            report = await self.control.news(symbol, n)
        except KeyError:
            return Reply(error_doc(f"Unknown symbol {symbol}: not one the bot trades"))
        except NoNewsSubscription as exc:
            return Reply(no_news_subscription_doc(exc.detail))
        except ConnectionError:
            return Reply(error_doc("No news now: not connected to the gateway"))
        return Reply(news_doc(report, self.tz))

    async def _scan(self, args: list[str], by: str) -> Result:
        if len(args) > 2:
            raise UsageError(
                "/scan takes a scan code and, if you like, a count: e.g. /scan MOST_ACTIVE 5"
            )
        if not args:
            try:
                return Reply(scan_codes_doc(await self.control.scan_codes()))
            except ConnectionError:
                return Reply(error_doc("No scan codes now: not connected to the gateway"))
        code = args[0].upper()[:40]
        n = _how_many("/scan", args[1], MAX_SCAN, f"e.g. /scan {code} 10") if len(args) == 2 else 10
        try:
            report = await self.control.scan(code, n)
        except KeyError:
            return Reply(error_doc(f"Unknown scan code {code}: /scan alone lists them"))
        except ScanBusy:
            return Reply(error_doc("Busy with another scan; try again in a few seconds"))
        except ConnectionError:
            return Reply(error_doc("No scan now: not connected to the gateway"))
        return Reply(scan_doc(report))

    # --- options ---------------------------------------------------------------------------

    async def _option_quote(self, args: list[str]) -> Result:
        option = option_from_words(args)
        try:
            quote = await self.control.option_quote(option)
        except KeyError:
            return Reply(error_doc(
                f"Unknown option {option.symbol}: IB lists no such expiry or strike "
                f"(/chain {option.underlying} lists them)"
            ))
        except ConnectionError:
            return Reply(error_doc("No quote now: not connected to the gateway"))
        return Reply(option_quote_doc(quote))

    async def _chain(self, args: list[str], by: str) -> Result:
        if not 1 <= len(args) <= 2:
            raise UsageError(
                "/chain takes a symbol and, if you like, an expiry: e.g. /chain AAPL 20261218"
            )
        underlying = _underlying(args[0], "/chain")
        expiry = None
        if len(args) == 2:
            expiry = args[1]
            if expiry_date(expiry) is None:
                raise UsageError(
                    f"/chain: the expiry {expiry[:20]!r} is not a date as YYYYMMDD: "
                    f"e.g. /chain {underlying} 20261218"
                )
        try:
            report = await self.control.option_chain(underlying, expiry)
        except KeyError:
            return Reply(error_doc(f"Unknown symbol {underlying}: IB lists no options on it"))
        except NoSuchExpiry as exc:
            return Reply(no_such_expiry_doc(exc))
        except ChainBusy:
            return Reply(error_doc("Busy with another expiry's chain; try again in a few seconds"))
        except ConnectionError:
            return Reply(error_doc("No option chain now: not connected to the gateway"))
        return Reply(chain_doc(report))

    async def _account(self, args: list[str], by: str) -> Result:
        _no_args(args, "account")
        try:
            report = await self.control.account()
        except ConnectionError:
            return Reply(error_doc("No account summary now: not connected to the gateway"))
        except TimeoutError:
            return Reply(error_doc("No account summary now: IB has not answered; try again "
                                   "in a minute"))
        return Reply(account_doc(report, self.tz))

    async def _pause(self, args: list[str], by: str) -> Result:
        reason = " ".join(args)[:200]
        return Reply(paused_doc(await self.control.pause(by, reason)))

    async def _resume(self, args: list[str], by: str) -> Result:
        _no_args(args, "resume")
        return Reply(resumed_doc(await self.control.resume(by)))

    async def _flatten(self, args: list[str], by: str) -> Result:
        scope = _scope(args, "flatten")
        what = (
            "Cancel EVERY open order in the account (also manual ones) and close EVERY position."
            if scope == "account"
            else "Pause, cancel the bot's open orders and close the positions in its symbols."
        )

        async def run(progress: ProgressCallback, confirmed_by: str) -> Doc:
            return flatten_doc(await self.control.flatten(confirmed_by, scope, progress))

        action = "flatten all" if scope == "account" else "flatten"
        return Confirm(action, what, "flattening", run)

    async def _cancelall(self, args: list[str], by: str) -> Result:
        scope = _scope(args, "cancelall")
        what = (
            "Cancel EVERY open order in the account, also those placed by hand."
            if scope == "account"
            else "Cancel the bot's open orders in its symbols."
        )

        async def run(progress: ProgressCallback, confirmed_by: str) -> Doc:
            return cancel_doc(await self.control.cancel_all(confirmed_by, scope))

        action = "cancelall all" if scope == "account" else "cancelall"
        return Confirm(action, what, "cancelling", run)

    async def _chart(self, args: list[str], by: str) -> Result:
        if len(args) in (3, 4):  # an option the bot trades: /chart AAPL 20261218 200C
            symbol: str | None = option_from_words(args).symbol
        elif len(args) > 1:
            raise UsageError("/chart takes at most one symbol, e.g. /chart AAPL")
        else:
            symbol = args[0].upper() if args else None
        try:
            data = await self.control.chart_data(symbol)
        except KeyError:
            return Reply(error_doc(f"Unknown symbol {symbol}: not one the bot trades"))
        if not data.times:
            return Reply(error_doc(f"No chart data for {symbol or 'equity'} yet"))
        try:
            png = await self.charts.png(data, self.tz, self.control.mode)
        except charts.ChartBusy:
            return Reply(error_doc("Busy drawing another chart; try again in a few seconds"))
        title = f"{symbol}: price, indicators and trades" if symbol else "Equity curve"
        return Photo(png, Doc(title, icon="📈"))


_SPECS: tuple[CommandSpec, ...] = (
    CommandSpec("start", "", "what the bot does", False, Commands._help),
    CommandSpec("help", "", "what each command does", False, Commands._help),
    CommandSpec(
        "status", "", "engine state, connection, equity, last bars", False, Commands._status
    ),
    CommandSpec("positions", "", "open positions", False, Commands._positions),
    CommandSpec("orders", "", "open orders", False, Commands._orders),
    CommandSpec("trades", "[n]", "the last n fills (10)", False, Commands._trades),
    CommandSpec("pnl", "", "today's profit and loss", False, Commands._pnl),
    CommandSpec(
        "account", "", "net liquidation, cash, buying power, margin, funds, PnL", False,
        Commands._account,
    ),
    CommandSpec("risk", "", "risk limits and what is left of them", False, Commands._risk),
    CommandSpec(
        "health", "", "connection, data freshness, loop lag, alerts", False, Commands._health
    ),
    CommandSpec("logs", "[n]", "recent warnings and errors (20)", False, Commands._logs),
    CommandSpec(
        "quote", "SYMBOL | SYMBOL YYYYMMDD STRIKE C|P",
        "bid, ask and last; an option's with its greeks", False, Commands._quote,
    ),
    CommandSpec(
        "news", "SYMBOL [n]", f"the latest n headlines (5, at most {MAX_NEWS})", False,
        Commands._news,
    ),
    CommandSpec(
        "scan", "[CODE [n]]", "the market scanner's first n stocks (10); no code: the codes",
        False, Commands._scan,
    ),
    CommandSpec(
        "chain", "SYMBOL [YYYYMMDD]",
        "options: the next expiries; with one, its strikes near the money", False,
        Commands._chain,
    ),
    CommandSpec(
        "chart", "[SYMBOL]", "price chart with trades, or the equity curve", False, Commands._chart
    ),
    CommandSpec("pause", "[reason]", "stop new entries", True, Commands._pause),
    CommandSpec("resume", "", "lift a pause", True, Commands._resume),
    CommandSpec(
        "flatten", "[all]", "KILL SWITCH: cancel orders, close positions", True, Commands._flatten
    ),
    CommandSpec("cancelall", "[all]", "cancel open orders", True, Commands._cancelall),
)


def _how_many(command: str, text: str, maximum: int, example: str) -> int:
    """A command's "how many": a whole number from 1 to `maximum`, or a UsageError saying so."""
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise UsageError(
            f"{command}: how many must be a whole number from 1 to {maximum}, "
            f"not {text[:20]!r}: {example}"
        )
    return int(text)


_UNDERLYING = re.compile(r"[A-Z0-9][A-Z0-9.]{0,11}")


def _underlying(text: str, command: str) -> str:
    symbol = text.upper()
    if not _UNDERLYING.fullmatch(symbol):
        raise UsageError(f"{command}: {text[:20]!r} is not a stock symbol, e.g. AAPL")
    return symbol


def option_from_words(args: list[str]) -> Instrument:
    """An option from /quote's words: `AAPL 20261218 200 C`, `AAPL 20261218 200C`, or the
    SYMBOLS form `AAPL:OPT:20261218:200:C`; a UsageError says what is wrong."""
    words = [a.upper() for a in args]
    if len(words) == 1:
        parts = words[0].split(":")
        if len(parts) != 5 or parts[1] != "OPT":
            raise UsageError("/quote: an option is SYMBOL:OPT:YYYYMMDD:STRIKE:C|P, "
                             "e.g. /quote AAPL:OPT:20261218:200:C")
        words = [parts[0], *parts[2:]]
    if len(words) == 3:
        last = re.fullmatch(r"(.*?)([A-Z])", words[2])
        words = [*words[:2], last.group(1), last.group(2)] if last else [*words, ""]
    underlying, expiry, strike_text, right = words
    example = "e.g. /quote AAPL 20261218 200 C"
    underlying = _underlying(underlying, "/quote")
    if expiry_date(expiry) is None:
        raise UsageError(f"/quote: the expiry {expiry[:20]!r} is not a date as YYYYMMDD: {example}")
    strike = option_strike(strike_text)
    if strike is None:
        raise UsageError(
            f"/quote: the strike {strike_text[:20]!r} is not a positive number: {example}"
        )
    if right not in ("C", "P"):
        raise UsageError(f"/quote: the right {right[:20]!r} is not C (call) or P (put): {example}")
    return Instrument.option(underlying, expiry, strike, right)
