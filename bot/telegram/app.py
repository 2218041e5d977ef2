"""Build and run the Telegram front-end inside the engine's event loop.

`TelegramFrontEnd.start()` starts the alert pipeline at once (alerts are journaled in the outbox
even while Telegram is unreachable), then connects: initialize (getMe, retried with backoff, a
429 after its retry_after; a refused token fails `start()` with a ConfigurationError that names
the setting and the status, never the token) → setMyCommands →
start → start_polling. A watchdog restarts polling when getUpdates has not answered for
`watchdog_factor` × the poll timeout. The connect, watchdog and alert-sender tasks are restarted
if they ever die of an unexpected error.

Shutdown has two steps so the engine can stop in between: `stop_intake()` stops taking commands
and lets a running flatten finish (bounded); `stop()` then flushes alerts and disconnects (and
does the first step itself if it was not done). `stop()` always completes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time as dtime
from http import HTTPStatus
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from telegram import BotCommand, BotCommandScopeChat
from telegram.error import InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder
from telegram.request import HTTPXRequest

from bot.alerts import AlertPump, BurstMerger
from bot.commands import ACTION_GRACE, Commands
from bot.tasks import KeptAlive
from bot.telegram.auth import Gate
from bot.telegram.clock import StampingQueue, TelegramClock
from bot.telegram.confirm import ConfirmFlow
from bot.telegram.delivery import AlertDelivery, retry_after_seconds
from bot.telegram.handlers import Handlers, build
from bot.telegram.migration import ChatMoves
from bot.telegram.ports import Outbox
from engine.control import ControlAPI
from engine.errors import ConfigurationError
from engine.logs import add_secrets

log = logging.getLogger(__name__)

MENU_KEY = "telegram.menu_chats"  # journal state: the chats given a command menu

DEFAULT_BASE_URL = "https://api.telegram.org/bot"
ALLOWED_UPDATES = ["message", "callback_query"]


@dataclass(frozen=True, slots=True)
class TelegramTuning:
    """Timings and bounds; the defaults are the production values, tests shorten them."""

    poll_timeout: float = 30.0
    watchdog_factor: float = 2.0
    stale_after: float = 60.0
    confirm_ttl: float = 60.0
    edit_interval: float = 1.0
    queue_bound: int = 1000
    read_timeout: float = 10.0
    connect_timeout: float = 10.0
    rate_limit_retries: int = 1
    connect_backoff: float = 1.0
    max_backoff: float = 30.0
    delivery_backoff: float = 0.5
    burst_limit: int = 5
    burst_window: float = 60.0
    digest_delay: float = 10.0
    fill_grace: float = 3.0
    stop_grace: float = ACTION_GRACE  # a running flatten may finish
    confirm_attempts: int = 3  # sends of a confirm prompt before giving up
    restart_delay: float = 1.0  # before a background task that died is started again
    drain_timeout: float = 2.0  # queued alerts may go out; the rest stay in the outbox


class _WithoutTraceback(logging.Filter):
    """PTB logs an answer that is not JSON (a proxy's or a wrong path's error page) with the
    json module's traceback; the message line already says what came back."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


def file_url_for(base_url: str) -> str:
    """PTB's base_file_url for a base_url: '.../bot' → '.../file/bot'."""
    return base_url[: -len("/bot")] + "/file/bot" if base_url.endswith("/bot") else base_url


class _PollRequest(HTTPXRequest):
    """The getUpdates connection, noting when the server last answered (for the watchdog)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.last_answer = time.monotonic()

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        answer = await super().do_request(*args, **kwargs)
        self.last_answer = time.monotonic()
        return answer


class TelegramFrontEnd:
    """Alerts to the allowed chats and commands from them, for one `ControlAPI`.

    token: the bot token (never logged). allowed_chat_ids: chats served, all others refused.
    operator_ids: user ids allowed to act (pause, resume, flatten, cancelall); empty means
    every allowed user. base_url: PTB's base URL ('https://api.telegram.org/bot' or a
    self-hosted Bot API server). alert_levels: kind → 'on' | 'silent' | 'off'.
    outbox: the journal (see `ports.Outbox`).
    """

    def __init__(
        self,
        *,
        token: str,
        allowed_chat_ids: set[int],
        control: ControlAPI,
        outbox: Outbox,
        operator_ids: set[int] | None = None,
        base_url: str = DEFAULT_BASE_URL,
        alert_levels: Mapping[str, str] | None = None,
        daily_summary_time: dtime | None = None,
        display_tz: ZoneInfo | None = None,
        tuning: TelegramTuning | None = None,
    ) -> None:
        if not allowed_chat_ids:
            raise ValueError("TELEGRAM_ALLOWED_CHAT_IDS is empty: the bot would serve nobody")
        add_secrets([token])  # whoever built us, the token is redacted from all we write
        for noisy in ("httpx", "httpcore"):  # they log request URLs, which hold the token
            logging.getLogger(noisy).setLevel(logging.WARNING)
        ptb_request_log = logging.getLogger("telegram.request.BaseRequest")
        if not any(isinstance(f, _WithoutTraceback) for f in ptb_request_log.filters):
            ptb_request_log.addFilter(_WithoutTraceback())
        self.control = control
        self._outbox = outbox
        self.tuning = t = tuning or TelegramTuning()
        tz = display_tz or ZoneInfo("UTC")
        self.delivery = AlertDelivery(
            outbox,
            allowed_chat_ids,
            lambda: control.mode,
            tz,
            bound=t.queue_bound,
            initial_backoff=t.delivery_backoff,
            max_backoff=t.max_backoff,
        )
        self.pump = AlertPump(
            control,
            self.delivery.submit,
            alert_levels,
            tz,
            daily_summary_time,
            BurstMerger(t.burst_limit, t.burst_window, t.digest_delay),
            t.fill_grace,
        )
        self.commands = Commands(control, tz, lambda: self.delivery.last_delivered)
        self.confirm = ConfirmFlow(
            self.delivery,
            lambda: control.mode,
            t.confirm_ttl,
            t.edit_interval,
            operator_ids=set(operator_ids or ()),
            attempts=t.confirm_attempts,
            backoff=t.delivery_backoff,
        )
        self.telegram_clock = TelegramClock()
        self.gate = Gate(
            set(allowed_chat_ids),
            set(operator_ids or ()),
            self.commands.is_acting,
            outbox,
            self.pump.publish,
            self.delivery.reply,
            tz,
            t.stale_after,
            telegram_clock=self.telegram_clock,
            on_chat_moved=self._follow_chat,
        )
        self.chat_moves = ChatMoves(
            outbox, self.gate.allowed_chat_ids, self._chat_moved, self.pump.publish
        )
        self.delivery.on_migrated = lambda old, new: self._follow_chat(old, new, "a send's 400")
        self._get_me_status = 0  # what Telegram last answered to getMe, for the refusal line
        hooks = {"event_hooks": {"response": [self.telegram_clock.on_response, self._note_get_me]}}
        self._poll_request = _PollRequest(
            connect_timeout=t.connect_timeout,
            read_timeout=t.read_timeout,
            connection_pool_size=2,
            httpx_kwargs=hooks,
        )
        self.app: Application = (  # type: ignore[type-arg]
            ApplicationBuilder()
            .token(token)
            .base_url(base_url)
            .base_file_url(file_url_for(base_url))
            .request(
                HTTPXRequest(
                    connect_timeout=t.connect_timeout,
                    read_timeout=t.read_timeout,
                    write_timeout=t.read_timeout,
                    connection_pool_size=16,
                    httpx_kwargs=hooks,
                )
            )
            .get_updates_request(self._poll_request)
            .update_queue(StampingQueue(self.telegram_clock))
            .rate_limiter(AIORateLimiter(max_retries=t.rate_limit_retries))
            .build()
        )
        handlers = Handlers(self.commands, self.confirm, self.delivery, lambda: control.mode)
        for handler, group in build(self.gate, handlers):
            self.app.add_handler(handler, group)
        self.app.add_error_handler(handlers.on_error)
        self.online = asyncio.Event()
        self.polling_restarts = 0
        self._first_attempt: asyncio.Future[None] | None = None
        self._refused = asyncio.Event()  # Telegram refused the token after start()
        self._connector = KeptAlive("telegram:connect", self._connect, t.restart_delay)
        self._watchdog = KeptAlive("telegram:watchdog", self._watch_polling, t.restart_delay)
        self._intake_stopped = False
        self._menu_tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start alerts, then connect. Raises ConfigurationError when Telegram refuses the
        token; if Telegram is unreachable or fails for another reason, returns and keeps
        connecting."""
        await self.chat_moves.restore()  # before the outbox: its alerts may be for a moved chat
        restored = await self.delivery.restore()
        if restored:
            log.info("%d undelivered alerts from the last run queued", restored)
        await self.delivery.start()
        await self.pump.start()
        self._first_attempt = asyncio.get_running_loop().create_future()
        self._connector.start()
        try:
            await self._first_attempt
        except InvalidToken:
            await self.stop()
            # PTB's message holds the token: it is dropped here, chain and all.
            raise ConfigurationError(self._refusal()) from None

    async def wait_failed(self) -> ConfigurationError:
        """Return when Telegram refuses the token after start() (revoked at BotFather, or
        refused once Telegram was reachable): nobody could command the bot any more."""
        await self._refused.wait()
        return ConfigurationError(self._refusal())

    def _refusal(self) -> str:
        status = self._get_me_status or HTTPStatus.UNAUTHORIZED
        if status == HTTPStatus.NOT_FOUND:  # a bad token's format, or a wrong server path
            return (
                f"Telegram refused TELEGRAM_BOT_TOKEN ({status}): check the token "
                "and TELEGRAM_API_BASE_URL"
            )
        return f"Telegram refused TELEGRAM_BOT_TOKEN ({status}): check the token"

    async def _note_get_me(self, response: httpx.Response) -> None:
        """httpx response hook: keep getMe's status (PTB's InvalidToken does not carry it)."""
        if response.request.url.path.endswith("/getMe"):
            self._get_me_status = response.status_code

    def _first_attempt_done(self, error: BaseException | None = None) -> None:
        if self._first_attempt is not None and not self._first_attempt.done():
            if error is None:
                self._first_attempt.set_result(None)
            else:
                self._first_attempt.set_exception(error)

    async def _connect(self) -> None:
        try:
            if not await self._initialize():
                return
        finally:
            self._first_attempt_done()  # whatever happened, start() must not wait forever
        await self._set_commands()
        if not self.app.running:
            await self.app.start()
        if not self.app.updater or not self.app.updater.running:  # type: ignore[union-attr]
            await self._start_polling()
        self.delivery.attach(self.app.bot)
        self._watchdog.start()
        self.online.set()
        log.info("Telegram bot @%s online", self.app.bot.username)

    async def _initialize(self) -> bool:
        """getMe until it works; False when the token is refused (start() raises)."""
        delay = self.tuning.connect_backoff
        while True:
            try:
                await self.app.initialize()
                return True
            except InvalidToken as exc:
                log.error("Telegram refused the bot token (check TELEGRAM_BOT_TOKEN)")
                if self._first_attempt is not None and self._first_attempt.done():
                    self._refused.set()  # later (revoked, or after a first outage): fatal too
                self._first_attempt_done(exc)
                return False
            except RetryAfter as exc:
                wait = retry_after_seconds(exc)
                log.warning("Telegram asks to wait %.0f s before connecting", wait)
                self._first_attempt_done()
                await asyncio.sleep(wait)
                continue
            except NetworkError as exc:
                log.warning("cannot reach Telegram (%s); retrying in %.1f s", exc.message, delay)
            except Exception as exc:  # a 409, a 200 with ok=false...: keep trying, never stall
                log.warning(
                    "connecting to Telegram failed (%s); retrying in %.1f s",
                    type(exc).__name__,
                    delay,
                )
            self._first_attempt_done()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.tuning.max_backoff)

    async def _set_commands(self) -> None:
        """The command menu only where the bot serves: none in the default scope (which every
        stranger sees), one per allowed chat. A failure costs only the menu, not commands."""
        try:
            await self.app.bot.delete_my_commands()  # also an older version's default menu
        except TelegramError as exc:
            log.warning("deleteMyCommands failed: %s", exc.message)
        served = set(self.delivery.chat_ids)  # the allowed chats, where they live now
        for chat_id in served:
            await self.set_menu(chat_id)
        await self._remove_old_menus(served)

    async def _remove_old_menus(self, served: set[int]) -> None:
        """Telegram keeps a chat's menu until it is deleted: a chat taken off
        TELEGRAM_ALLOWED_CHAT_IDS would go on showing /flatten. The chats given one are kept in
        the journal, and those no longer served lose it."""
        try:
            before = {int(c) for c in json.loads(await self._outbox.get_state(MENU_KEY) or "[]")}
        except (ValueError, TypeError):
            before = set()
        for chat_id in before - served:
            try:
                await self.app.bot.delete_my_commands(scope=BotCommandScopeChat(chat_id))
            except TelegramError as exc:
                log.warning("deleteMyCommands for chat %d failed: %s", chat_id, exc.message)
                served = served | {chat_id}  # try again next time
        await self._outbox.set_state(MENU_KEY, json.dumps(sorted(served)))

    async def set_menu(self, chat_id: int) -> None:
        """Set one allowed chat's menu. A private chat of a user who may not act sees only the
        read-only commands; a group sees all (its operators may act)."""
        # Users (private chats) have positive ids, groups negative ones.
        read_only = chat_id > 0 and not self.gate.may_act_id(chat_id)
        menu = [
            BotCommand(name, text)
            for name, text in self.commands.menu()
            if not (read_only and self.commands.is_acting(name))
        ]
        try:
            await self.app.bot.set_my_commands(menu, scope=BotCommandScopeChat(chat_id))
        except TelegramError as exc:
            log.warning("setMyCommands for chat %d failed: %s", chat_id, exc.message)

    async def _follow_chat(self, old: int, new: int, how: str) -> bool:
        return await self.chat_moves.follow(old, new, how)

    def _chat_moved(self, old: int, new: int) -> None:
        self.delivery.move_chat(old, new)
        if self.online.is_set():  # else the menu is set on connecting, for every chat
            self._menu_tasks.add(task := asyncio.create_task(self.set_menu(new)))
            task.add_done_callback(self._menu_tasks.discard)

    async def _start_polling(self) -> None:
        self._poll_request.last_answer = time.monotonic()
        await self.app.updater.start_polling(  # type: ignore[union-attr]
            timeout=max(int(self.tuning.poll_timeout), 1),  # Telegram wants whole seconds
            allowed_updates=ALLOWED_UPDATES,
            bootstrap_retries=-1,
            error_callback=self._polling_error,
        )

    @staticmethod
    def _polling_error(error: TelegramError) -> None:
        log.warning("polling Telegram failed: %s: %s", type(error).__name__, error.message)

    async def _watch_polling(self) -> None:
        limit = self.tuning.watchdog_factor * max(self.tuning.poll_timeout, 1.0)
        while True:
            await asyncio.sleep(limit / 4)
            updater = self.app.updater
            silent_for = time.monotonic() - self._poll_request.last_answer
            if silent_for > limit or (updater is not None and not updater.running):
                log.warning("getUpdates silent for %.0f s; restarting polling", silent_for)
                try:
                    await self._restart_polling()
                except InvalidToken:
                    if await self._token_refused():
                        log.error("Telegram refused the bot token (check TELEGRAM_BOT_TOKEN)")
                        self._refused.set()
                        return
                    log.error("restarting polling failed (InvalidToken); getMe still works")
                except Exception as exc:  # try again next round
                    log.error("restarting polling failed (%s)", type(exc).__name__)

    async def _token_refused(self) -> bool:
        """Ask getMe whether the token is refused for good (one odd 401 is not proof)."""
        try:
            await self.app.bot.get_me()
        except InvalidToken:
            return True
        except TelegramError:
            return False  # unreachable or busy: not a refusal
        return False

    async def _restart_polling(self) -> None:
        self.polling_restarts += 1
        updater = self.app.updater
        assert updater is not None
        if updater.running:
            try:
                await asyncio.wait_for(updater.stop(), timeout=self.tuning.read_timeout)
            except TimeoutError:
                log.warning("stopping the hung poll timed out; starting a new one anyway")
        await self._start_polling()

    async def stop_intake(self) -> None:
        """Stop taking commands and button presses; let a running flatten finish (for at most
        `stop_grace` seconds). Alerts still flow."""
        if self._intake_stopped:
            return
        self._intake_stopped = True
        await self._watchdog.stop()
        await self._connector.stop()
        self._first_attempt_done()
        updater = self.app.updater
        if updater is not None and updater.running:
            try:
                await asyncio.wait_for(updater.stop(), timeout=self.tuning.read_timeout)
            except Exception as exc:  # a hung or broken poll must not stop the shutdown
                log.warning("stopping polling failed (%s)", type(exc).__name__)
        await self.confirm.stop(self.tuning.stop_grace)

    async def stop(self) -> None:
        """Stop taking commands, let a running flatten finish, flush alerts, disconnect.
        Always completes, whatever failed before."""
        try:
            await self.stop_intake()
            await self.pump.stop()
        except Exception:
            log.exception("stopping the Telegram front-end failed; shutting down anyway")
        finally:
            await self._finish_shutdown()

    async def _finish_shutdown(self) -> None:
        try:
            await self.delivery.stop(self.tuning.drain_timeout)
            await self.commands.close()
            if self.app.running:
                await self.app.stop()
        except Exception:
            log.exception("stopping the Telegram front-end failed; shutting down anyway")
        finally:
            await self.app.shutdown()
            self.online.clear()
