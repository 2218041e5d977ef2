"""The engine in a child process that SIGKILLs itself at a chosen point of an order's life.

    python -m tests.engine.kill_points DB PORT POINT NTH SPEED [SETTING=VALUE ...]

builds the engine as `running_engine` does (the FAST_SETTINGS strategy, with the settings
given, trading on its own)
against the gateway on 127.0.0.1:PORT, on the journal DB, and kills itself, with no chance to
save anything more, at the NTH time the engine reaches POINT:

- `intent`: an order's intent is committed (`JournalWriter.commit_then` calls back), before
  placeOrder;
- `placed`: right after `IBBroker.place` returned (placeOrder written to the socket);
- `fill`: right after `Fills.on_fill` took an execution (its journal row not yet committed).

Only this process's classes are wrapped. It prints `ready` once the engine is ready; if the
point is not reached in time it exits with NOT_REACHED.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.broker import IBBroker
from engine.engine import Engine
from engine.fills import Fills
from engine.journal import Journal
from engine.journal_writer import JournalWriter

from .conftest import NO_TRACE_GRACE, make_settings

KILL_POINTS = ("intent", "placed", "fill")
NOT_REACHED = 3
TRADING_SECONDS = 20.0


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _install(point: str, nth: int) -> None:
    reached = 0

    def count() -> None:
        nonlocal reached
        reached += 1
        if reached == nth:
            _die()

    if point == "intent":
        commit_then = JournalWriter.commit_then

        @functools.wraps(commit_then)
        def commit_then_and_die(self: JournalWriter, statement: Any, then: Callable) -> None:
            def committed(outcome: Any) -> None:
                if not isinstance(outcome, BaseException):
                    count()
                then(outcome)

            commit_then(self, statement, committed)

        JournalWriter.commit_then = commit_then_and_die  # type: ignore[method-assign]
    elif point == "placed":
        place = IBBroker.place

        @functools.wraps(place)
        def place_and_die(self: IBBroker, *args: Any, **kwargs: Any) -> int:
            order_id = place(self, *args, **kwargs)
            count()
            return order_id

        IBBroker.place = place_and_die  # type: ignore[method-assign]
    elif point == "fill":
        on_fill = Fills.on_fill

        @functools.wraps(on_fill)
        def on_fill_and_die(self: Fills, fill: Any) -> None:
            on_fill(self, fill)
            count()

        Fills.on_fill = on_fill_and_die  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown kill point {point!r}; expected one of {KILL_POINTS}")


async def _trade(db: Path, port: int, speed: float, overrides: dict[str, str]) -> None:
    settings = make_settings(db.parent, db_path=db, **overrides)
    journal = await Journal.open(settings.db_path)
    broker = IBBroker.from_settings(settings, host="127.0.0.1", port=port, backoff_initial=0.05)
    engine = Engine(
        settings, journal, broker, mode="sim", clock_speed=speed, no_trace_grace=NO_TRACE_GRACE
    )
    await engine.start()
    await asyncio.wait_for(engine.ready.wait(), 20)
    print("ready", flush=True)
    await asyncio.sleep(TRADING_SECONDS)  # the kill comes first


def main(argv: list[str]) -> int:
    db, port, point, nth, speed, *settings = argv
    _install(point, int(nth))
    overrides = dict(setting.split("=", 1) for setting in settings)
    asyncio.run(_trade(Path(db), int(port), float(speed), overrides))
    return NOT_REACHED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
