"""The control API every front-end uses: it returns data, never text, and journals who asked."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from engine.domain import Fill, Order
from engine.events import Subscription
from engine.reports import (
    CancelReport,
    ChartData,
    FlattenReport,
    HealthReport,
    JournalEntry,
    PnlReport,
    PositionsReport,
    Quote,
    RiskReport,
    StatusReport,
)

ProgressCallback = Callable[[str], Awaitable[None]]


class ControlAPI(Protocol):
    """What a front-end (console, Telegram) may ask of the engine."""

    @property
    def mode(self) -> str: ...  # "sim", "paper" or "live"

    async def status(self) -> StatusReport: ...
    async def positions(self) -> PositionsReport: ...
    async def orders(self) -> list[Order]: ...
    async def trades(self, n: int = 10) -> list[Fill]: ...
    async def pnl(self) -> PnlReport: ...
    async def risk(self) -> RiskReport: ...
    async def health(self) -> HealthReport: ...
    async def logs(self, n: int = 20) -> list[JournalEntry]: ...
    async def quote(self, symbol: str) -> Quote: ...  # raises KeyError for an unknown symbol
    async def pause(self, by: str, reason: str = "") -> StatusReport: ...
    async def resume(self, by: str) -> StatusReport: ...
    async def flatten(
        self, by: str, scope: str = "bot", progress: ProgressCallback | None = None
    ) -> FlattenReport: ...
    async def cancel_all(self, by: str, scope: str = "bot") -> CancelReport: ...
    async def chart_data(self, symbol: str | None) -> ChartData: ...
    def subscribe(self, maxsize: int = 1000) -> Subscription: ...
