"""What the Telegram front-end needs from the journal: an outbox for alerts and an event log."""

from __future__ import annotations

from typing import Any, Protocol


class Outbox(Protocol):
    """Implemented by engine.journal.Journal; tests use an in-memory one."""

    async def outbox_add(self, channel: str, payload: str) -> int: ...
    async def outbox_pending(self, channel: str, limit: int = 100) -> list[tuple[int, str]]: ...
    async def outbox_done(self, outbox_id: int) -> None: ...
    async def log_event(
        self, level: str, kind: str, message: str, details: dict[str, Any] | None = None
    ) -> None: ...
