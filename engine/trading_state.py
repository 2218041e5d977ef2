"""RUNNING, PAUSED or HALTED: applied in memory at once, persisted so a restart resumes it.

The state itself lives in RiskManager (its checks read it); this module is how the rest of
the engine changes it and makes it last.
"""

from __future__ import annotations

from engine.domain import EngineState
from engine.journal import Journal
from engine.journal_rows import state_statements
from engine.recorder import Recorder
from engine.risk import RiskManager


class TradingState:
    def __init__(self, risk: RiskManager, recorder: Recorder) -> None:
        self._risk = risk
        self._recorder = recorder

    @property
    def state(self) -> EngineState:
        return self._risk.state

    async def restore(self, journal: Journal) -> None:
        """Resume the state the last run left (a pause or a halt outlives a restart)."""
        state = await journal.get_state("engine_state", EngineState.RUNNING.value)
        reason = await journal.get_state("pause_reason", "") or ""
        if state == EngineState.PAUSED.value:
            self._risk.pause(reason or "paused before the restart")
        elif state == EngineState.HALTED.value:
            self._risk.halt(reason or "halted before the restart")

    async def set(self, state: EngineState, reason: str, by: str) -> None:
        if state is EngineState.RUNNING:
            self._risk.resume()
        elif state is EngineState.PAUSED:
            self._risk.pause(reason)
        else:
            self._risk.halt(reason)
        await self.persist(state, reason, by)

    async def persist(self, state: EngineState, reason: str, by: str) -> None:
        """Journal a state already applied in memory (so a restart resumes it); returns once
        its rows are committed (queued together, in order, after every row queued before)."""
        *first, last = state_statements(state, reason, by)
        for statement in first:
            self._recorder.write(statement)
        await self._recorder.write_durable(last)
