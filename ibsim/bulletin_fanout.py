"""News bulletins out to the clients subscribed with reqNewsBulletins: posted now (the control
channel, tests) or when the simulated clock reaches a scripted one."""

from __future__ import annotations

import asyncio

from . import messages as msg
from .bulletins import REGULAR, Bulletin
from .state import ServerState


class BulletinFanout:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._timer: asyncio.TimerHandle | None = None
        self._running = False

    def start(self) -> None:
        self._running = True
        self.state.clock.on_change(self._run_due)
        self._run_due()

    def close(self) -> None:
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def publish(self, message: str, exchange: str = "", msg_type: int = REGULAR) -> Bulletin:
        """Post a bulletin now and send it to every subscriber (ValueError on a bad one)."""
        bulletin = self.state.bulletins.post(self.state.clock.now(), message, exchange, msg_type)
        fields = msg.news_bulletin(bulletin)
        for session in self.state.clients.sessions():
            if session.subs.bulletins:
                session.write(fields)
        return bulletin

    def _run_due(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._running:
            return
        clock, board = self.state.clock, self.state.bulletins
        for item in board.due(clock.now()):
            self.publish(item.message, item.exchange, item.msg_type)
        when = board.next_due()
        delay = None if when is None else clock.wall_delay(when)
        if delay is not None:
            self._timer = asyncio.get_running_loop().call_later(delay, self._run_due)
