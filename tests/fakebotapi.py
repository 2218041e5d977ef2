"""A fake Telegram Bot API server (aiohttp on 127.0.0.1:0) for tests and benchmarks.

It answers the methods the bot uses the way Telegram does (real status codes for errors), holds
getUpdates open on an asyncio.Event until an update is injected, records every request, and
can be told to fail: 429 with retry_after, 502, 403, 401, 409, a 200 with `{"ok": false}`, be
slow, or hang (never answer) for a while. Like Telegram, it refuses a message over 4,096
characters (counted after HTML parsing), and its clock (message dates and the HTTP Date header)
can be set apart from ours with `clock_offset`.

    async with FakeBotAPI() as api:
        front_end = TelegramFrontEnd(token=api.token, base_url=api.base_url, ...)
        api.inject_command("/status", chat_id=42)
        request = await api.wait_for("sendMessage")
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from aiohttp import web

BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Trade Bot", "username": "trade_test_bot"}
# Who Telegram names as `from` of a message posted on behalf of a chat.
GROUP_ANONYMOUS_BOT = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
CHANNEL_BOT = {"id": 136817688, "is_bot": True, "first_name": "Channel", "username": "Channel_Bot"}


@dataclass(slots=True)
class Request:
    """One request as the server saw it; params are the raw form values."""

    method: str
    params: dict[str, str]
    files: dict[str, bytes]
    at: float  # time.monotonic() on arrival
    status: int = 0  # what the server answered (0: never answered)
    result: Any = None  # the "result" of a successful answer

    def int(self, name: str) -> int:
        return int(self.params[name])

    def json(self, name: str) -> Any:
        return json.loads(self.params[name])

    @property
    def text(self) -> str:
        return self.params.get("text", "")


@dataclass(slots=True)
class Fault:
    """Answer `method` (None: every method but getUpdates) with a failure.

    kind: "429", "502", "403", "400", "401", "409", "okfalse" (HTTP 200 with `"ok": false`),
    "slow" (answer normally after `delay` seconds) or "hang" (hold the request, never answer).
    It applies to the next `count` matching requests, or to all of them until `until`
    (monotonic); `where` narrows it to requests it is true for."""

    kind: str
    method: str | None = None
    count: int | None = None
    until: float | None = None
    retry_after: int = 1
    delay: float = 0.0
    where: Callable[[Request], bool] | None = None

    def matches(self, method: str, now: float, request: Request | None = None) -> bool:
        if self.method is None and method == "getUpdates":
            return False
        if self.method is not None and self.method != method:
            return False
        if self.until is not None and now >= self.until:
            return False
        if self.where is not None and (request is None or not self.where(request)):
            return False
        return self.count is None or self.count > 0


@dataclass(slots=True)
class _Update:
    update_id: int
    payload: dict[str, Any]


_ERRORS = {
    "429": (429, "Too Many Requests: retry after {retry_after}"),
    "502": (502, "Bad Gateway"),
    "403": (403, "Forbidden: bot was blocked by the user"),
    "400": (400, "Bad Request: chat not found"),
    "401": (401, "Unauthorized"),
    "409": (409, "Conflict: terminated by other getUpdates request"),
    "okfalse": (200, "Internal Server Error"),
}
_TAG = re.compile(r"<[^>]+>")
MESSAGE_LIMIT = 4096


def visible_length(text: str, parse_mode: str | None) -> int:
    """A message's length as Telegram counts it: after HTML parsing, in UTF-16 code units."""
    if parse_mode == "HTML":
        text = html.unescape(_TAG.sub("", text))
    return len(text.encode("utf-16-le")) // 2


@dataclass
class FakeBotAPI:
    token: str = "123456:TEST-token-do-not-log"
    host: str = "127.0.0.1"
    requests: list[Request] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    clock_offset: float = 0.0  # Telegram's clock minus ours, in seconds

    def now(self) -> float:
        """Telegram's wall clock (Unix time)."""
        return time.time() + self.clock_offset

    def __post_init__(self) -> None:
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._updates: list[_Update] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._callback_ids = itertools.count(1)
        self._new_update = asyncio.Event()
        self._changed = asyncio.Condition()
        self._closing = asyncio.Event()
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        # The command menus as Telegram keeps them: scope key (see `scope_key`) → commands.
        self.menus: dict[str, list[dict[str, str]]] = {}
        self.migrated: dict[int, int] = {}  # group id → the supergroup it became

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> FakeBotAPI:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        self._closing.set()
        self._new_update.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/bot"

    # --- injecting updates ---------------------------------------------------------------

    def inject_update(self, payload: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        self._updates.append(_Update(update_id, payload))
        self._new_update.set()
        self._new_update = asyncio.Event()
        return update_id

    def inject_message(
        self,
        text: str,
        chat_id: int = 42,
        user_id: int | None = None,
        date: int | None = None,
        chat_type: str = "private",
        command: bool = False,
    ) -> int:
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(self.now()) if date is None else date,
            "chat": {"id": chat_id, "type": chat_type},
            "from": {
                "id": chat_id if user_id is None else user_id,
                "is_bot": False,
                "first_name": "User",
                "username": f"user{user_id or chat_id}",
            },
            "text": text,
        }
        if command:
            length = len(text.split()[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return self.inject_update({"message": message})

    def inject_command(self, text: str, chat_id: int = 42, **kwargs: Any) -> int:
        return self.inject_message(text, chat_id, command=True, **kwargs)

    def inject_command_as_chat(
        self,
        text: str,
        chat_id: int,
        sender_chat_id: int | None = None,
        chat_type: str = "supergroup",
    ) -> int:
        """A command posted on behalf of a chat: by an anonymous admin of the group itself
        (`sender_chat_id` None: from GroupAnonymousBot), or as another chat, e.g. a channel
        (from Channel_Bot), as Telegram shows them."""
        as_group = sender_chat_id is None or sender_chat_id == chat_id
        sender_chat = (
            {"id": chat_id, "type": chat_type, "title": "The group"}
            if as_group
            else {"id": sender_chat_id, "type": "channel", "title": "A channel"}
        )
        message = {
            "message_id": next(self._message_ids),
            "date": int(self.now()),
            "chat": {"id": chat_id, "type": chat_type, "title": "The group"},
            "from": GROUP_ANONYMOUS_BOT if as_group else CHANNEL_BOT,
            "sender_chat": sender_chat,
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        }
        return self.inject_update({"message": message})

    def migrate_chat(self, old: int, new: int, announce: bool = True, user_id: int = 42) -> None:
        """Upgrade group `old` to supergroup `new`, as Telegram does: from now on anything sent
        to `old` gets a 400 naming `new`; with `announce`, the two service messages arrive
        (one in the old chat carrying migrate_to_chat_id, one in the new carrying
        migrate_from_chat_id)."""
        self.migrated[old] = new
        if not announce:
            return
        for chat, key, other, kind in (
            (old, "migrate_to_chat_id", new, "group"),
            (new, "migrate_from_chat_id", old, "supergroup"),
        ):
            self.inject_update(
                {
                    "message": {
                        "message_id": next(self._message_ids),
                        "date": int(self.now()),
                        "chat": {"id": chat, "type": kind},
                        "from": {"id": user_id, "is_bot": False, "first_name": "Admin"},
                        key: other,
                    }
                }
            )

    def buttons(self, request: Request) -> list[tuple[str, str]]:
        """(text, callback_data) of the inline buttons a sendMessage carried."""
        markup = request.json("reply_markup") if "reply_markup" in request.params else {}
        return [
            (b["text"], b["callback_data"])
            for row in markup.get("inline_keyboard", [])
            for b in row
        ]

    def press_button(
        self,
        data: str,
        chat_id: int = 42,
        message_id: int | None = None,
        user_id: int | None = None,
        chat_type: str = "private",
    ) -> int:
        message = self.messages.get((chat_id, message_id or 0)) or {
            "message_id": message_id or 1,
            "date": int(self.now()),
            "chat": {"id": chat_id, "type": chat_type},
            "from": BOT_USER,
            "text": "?",
        }
        return self.inject_update(
            {
                "callback_query": {
                    "id": str(next(self._callback_ids)),
                    "from": {
                        "id": chat_id if user_id is None else user_id,
                        "is_bot": False,
                        "first_name": "User",
                    },
                    "chat_instance": "ci",
                    "data": data,
                    "message": message,
                }
            }
        )

    # --- faults --------------------------------------------------------------------------

    def fail(
        self,
        kind: str,
        method: str | None = None,
        *,
        count: int | None = None,
        seconds: float | None = None,
        retry_after: int = 1,
        delay: float = 0.0,
        where: Callable[[Request], bool] | None = None,
    ) -> Fault:
        until = time.monotonic() + seconds if seconds is not None else None
        fault = Fault(kind, method, count, until, retry_after, delay, where)
        self.faults.append(fault)
        return fault

    def heal(self) -> None:
        self.faults.clear()

    # --- command menus -------------------------------------------------------------------

    def menu(self, chat_id: int | None = None) -> list[str]:
        """Command names set for one chat's scope (None: the default scope, what everyone
        without a more specific menu sees)."""
        scope = {"type": "default"} if chat_id is None else {"type": "chat", "chat_id": chat_id}
        return [command["command"] for command in self.menus.get(scope_key(scope), [])]

    # --- looking at what happened --------------------------------------------------------

    def calls(
        self, method: str | tuple[str, ...], predicate: Callable[[Request], bool] | None = None
    ) -> list[Request]:
        """Requests to `method` (or any of several) matching `predicate`."""
        methods = (method,) if isinstance(method, str) else method
        return [
            r for r in self.requests if r.method in methods and (predicate is None or predicate(r))
        ]

    def sent(self, chat_id: int | None = None) -> list[Request]:
        """sendMessage requests that succeeded, optionally for one chat."""
        return self.calls(
            "sendMessage",
            lambda r: r.status == 200 and (chat_id is None or r.int("chat_id") == chat_id),
        )

    async def wait_for(
        self,
        method: str | tuple[str, ...],
        predicate: Callable[[Request], bool] | None = None,
        count: int = 1,
        timeout: float = 5.0,
        answered: bool = True,
    ) -> Request:
        """The `count`-th request to `method` matching `predicate` (answered with 200 unless
        `answered` is False); waits on a condition, never sleeps."""

        def found() -> list[Request]:
            return [r for r in self.calls(method, predicate) if not answered or r.status == 200]

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(found()) >= count), timeout)
        return found()[count - 1]

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- the server ----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, str] = {}
        files: dict[str, bytes] = {}
        if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
            for key, value in (await request.post()).items():
                if isinstance(value, str):
                    params[key] = value
                else:
                    files[key] = value.file.read()
        recorded = Request(method, params, files, time.monotonic())
        self.requests.append(recorded)
        await self._notify()
        response = await self._respond(request.match_info["token"], method, recorded)
        response.headers["Date"] = formatdate(self.now(), usegmt=True)
        recorded.status = response.status
        await self._notify()
        return response

    async def _respond(self, token: str, method: str, request: Request) -> web.Response:
        if token != self.token:
            return _error(401, "Unauthorized")
        now = time.monotonic()
        for fault in self.faults:
            if fault.matches(method, now, request):
                if fault.count is not None:
                    fault.count -= 1
                if fault.kind == "slow":
                    await asyncio.sleep(fault.delay)  # network latency, simulated
                    break
                if fault.kind == "hang":
                    await self._closing.wait()
                    return _error(504, "Gateway Timeout")
                status, text = _ERRORS[fault.kind]
                parameters = {"retry_after": fault.retry_after} if fault.kind == "429" else None
                return _error(status, text.format(retry_after=fault.retry_after), parameters)
        chat_id = request.params.get("chat_id", "")
        if chat_id.lstrip("-").isdigit() and int(chat_id) in self.migrated:
            return _error(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self.migrated[int(chat_id)]},
            )
        if method in ("sendMessage", "editMessageText") and (
            visible_length(request.text, request.params.get("parse_mode")) > MESSAGE_LIMIT
        ):
            return _error(400, "Bad Request: message is too long")
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        return _ok(await handler(request))

    async def _m_getMe(self, request: Request) -> Any:
        return BOT_USER

    async def _m_deleteWebhook(self, request: Request) -> Any:
        return True

    async def _m_setMyCommands(self, request: Request) -> Any:
        commands = request.json("commands")
        key = scope_key(request.json("scope") if "scope" in request.params else None)
        if commands:
            self.menus[key] = commands
        else:  # an empty list is how a menu is removed, like deleteMyCommands
            self.menus.pop(key, None)
        return True

    async def _m_deleteMyCommands(self, request: Request) -> Any:
        self.menus.pop(
            scope_key(request.json("scope") if "scope" in request.params else None), None
        )
        return True

    async def _m_answerCallbackQuery(self, request: Request) -> Any:
        return True

    async def _m_getUpdates(self, request: Request) -> Any:
        offset = int(request.params.get("offset", "0") or 0)
        timeout = float(request.params.get("timeout", "0") or 0)
        if offset:
            self._updates = [u for u in self._updates if u.update_id >= offset]
        if not self._updates and timeout > 0 and not self._closing.is_set():
            try:
                await asyncio.wait_for(self._new_update.wait(), timeout)
            except TimeoutError:
                pass
        return [{"update_id": u.update_id, **u.payload} for u in self._updates]

    def _message(self, request: Request, **extra: Any) -> dict[str, Any]:
        chat_id = request.int("chat_id")
        message_id = int(request.params.get("message_id") or next(self._message_ids))
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(self.now()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
            "from": BOT_USER,
            **extra,
        }
        if "reply_markup" in request.params:
            message["reply_markup"] = request.json("reply_markup")
        self.messages[(chat_id, message_id)] = message
        request.result = message
        return message

    async def _m_sendMessage(self, request: Request) -> Any:
        return self._message(request, text=request.text)

    async def _m_editMessageText(self, request: Request) -> Any:
        return self._message(request, text=request.text, edit_date=int(self.now()))

    async def _m_sendPhoto(self, request: Request) -> Any:
        photo = {"file_id": "photo1", "file_unique_id": "u1", "width": 800, "height": 450}
        return self._message(request, photo=[photo], caption=request.params.get("caption", ""))


def scope_key(scope: dict[str, Any] | None) -> str:
    """One BotCommandScope as a dictionary key; no scope is the default scope."""
    scope = scope or {"type": "default"}
    return json.dumps({"type": scope["type"], "chat_id": scope.get("chat_id")}, sort_keys=True)


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)
