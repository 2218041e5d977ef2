"""HEALTH_PORT: `GET /healthz` and `GET /metrics` over plain HTTP on 127.0.0.1 only, with
asyncio.start_server (no web framework): for Docker's healthcheck, a monitor or Prometheus
on the same machine.

`/healthz` answers 200 `ok` while the bot does its job, else 503 with one line saying why
(`bot.health.health_problem`); `/metrics` answers in Prometheus' text format.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Callable, Mapping

from bot.health import EventCounts, LastAttempt, health_problem, metrics_text
from engine.engine import Engine
from engine.errors import ConfigurationError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
REQUEST_TIMEOUT = 5.0  # seconds for a client to send its request
MAX_REQUEST_BYTES = 8192
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ExtraMetrics = Callable[[], Mapping[str, tuple[str, str, float]]]

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            503: "Service Unavailable"}  # fmt: skip


class HealthServer:
    def __init__(
        self,
        engine: Engine,
        port: int,
        last_attempt: LastAttempt,
        extra: ExtraMetrics | None = None,
    ) -> None:
        self._engine = engine
        self.port = port
        self._last_attempt = last_attempt
        self._extra = extra
        self._counts: EventCounts | None = None
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(
                self._serve, HOST, self.port, limit=MAX_REQUEST_BYTES
            )
        except OSError as exc:
            problem = "in use by another program" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise ConfigurationError(
                f"HEALTH_PORT: cannot listen on {HOST}:{self.port} ({problem}); choose another "
                "port or leave HEALTH_PORT empty"
            ) from None
        self._counts = EventCounts(self._engine)
        log.info("health endpoint on http://%s:%s/healthz and /metrics", HOST, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None
        if self._counts is not None:
            self._counts.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            except asyncio.LimitOverrunError:
                await self._answer(writer, 400, "request too large\n")
                return
            except (asyncio.IncompleteReadError, TimeoutError):
                return
            status, body, content_type, send_body = self._route(head)
            await self._answer(writer, status, body, content_type, send_body)
        except ConnectionError:
            pass  # the client went away; nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _route(self, head: bytes) -> tuple[int, str, str, bool]:
        """(status, body, content type, whether to send the body) for a request head."""
        plain = "text/plain; charset=utf-8"
        words = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(words) != 3 or not words[2].startswith("HTTP/"):
            return 400, "bad request\n", plain, True
        method, target = words[0], words[1].split("?", 1)[0]
        if target not in ("/healthz", "/metrics"):
            return 404, "not found: /healthz or /metrics\n", plain, True
        if method not in ("GET", "HEAD"):
            return 405, "GET only\n", plain, True
        head_only = method == "HEAD"
        if target == "/healthz":
            problem = health_problem(self._engine)
            if problem is None:
                return 200, "ok\n", plain, not head_only
            return 503, problem.replace("\n", " ") + "\n", plain, not head_only
        assert self._counts is not None
        extra = self._extra() if self._extra is not None else None
        text = metrics_text(self._engine, self._counts, self._last_attempt(), extra)
        return 200, text, METRICS_TYPE, not head_only

    @staticmethod
    async def _answer(
        writer: asyncio.StreamWriter, status: int, body: str,
        content_type: str = "text/plain; charset=utf-8", send_body: bool = True,
    ) -> None:  # fmt: skip
        data = body.encode()
        header = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(data)}\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(header.encode() + (data if send_body else b""))
        await writer.drain()

