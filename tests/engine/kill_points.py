"""The engine in a child process that SIGKILLs itself at a chosen point of an order's life.

    python -m tests.engine.kill_points DB PORT POINT NTH SPEED [SETTING=VALUE ...]

builds the engine as `running_engine` does (the FAST_SETTINGS strategy, with the settings
given, trading on its own)
against the gateway on 127.0.0.1:PORT, on the journal DB, and kills itself, with no chance to
save anything more, at the NTH time the engine reaches POINT:

- `intent`: an order's intent is committed (`JournalWriter.commit_then` calls back), before
  placeOrder;
- `placed`: right after `IBBroker.place` returned (placeOrder written to the socket);
- `fill`: right after `Fills.on_fill` took an execution (its journal row not yet committed);
- `flatten-intent`, `flatten-placed`: during a /flatten, right after the intent of one of the
  kill switch's closing orders is on disk, or right after its placeOrder. The child's strategy
  does not trade: it opens two positions and a resting order itself, then flattens.

With KILL_ALSO_PID in the environment, that process (a standalone ibsim) is SIGKILLed in the
same instant: the bot and the gateway die together.

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
from engine.domain import Order, OrderType, Side
from engine.engine import Engine
from engine.fills import Fills
from engine.journal import Journal
from engine.journal_writer import JournalWriter
from engine.orders import OrderManager
from engine.trader import Trader

from .conftest import NO_TRACE_GRACE, make_settings

KILL_POINTS = ("intent", "placed", "fill")
FLATTEN_POINTS = ("flatten-intent", "flatten-placed")
NOT_REACHED = 3
TRADING_SECONDS = 20.0


def _die() -> None:
    if also := os.environ.get("KILL_ALSO_PID"):
        os.kill(int(also), signal.SIGKILL)
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
    elif point == "flatten-intent":
        after_intent = OrderManager._after_intent

        @functools.wraps(after_intent)
        def die_before_placing(self: OrderManager, order: Order, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("kill_switch"):
                count()
            return after_intent(self, order, *args, **kwargs)

        OrderManager._after_intent = die_before_placing  # type: ignore[method-assign]
    elif point == "flatten-placed":
        place = IBBroker.place

        @functools.wraps(place)
        def close_and_die(self: IBBroker, order: Order, *args: Any, **kwargs: Any) -> int:
            order_id = place(self, order, *args, **kwargs)
            if order.is_kill_switch:
                count()
            return order_id

        IBBroker.place = close_and_die  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown kill point {point!r}; "
                         f"expected one of {KILL_POINTS + FLATTEN_POINTS}")


async def _trade(
    db: Path, port: int, speed: float, overrides: dict[str, str], flatten: bool
) -> None:
    settings = make_settings(db.parent, db_path=db, **overrides)
    journal = await Journal.open(settings.db_path)
    broker = IBBroker.from_settings(settings, host="127.0.0.1", port=port, backoff_initial=0.05)
    engine = Engine(
        settings, journal, broker, mode="sim", clock_speed=speed, no_trace_grace=NO_TRACE_GRACE
    )
    await engine.start()
    await asyncio.wait_for(engine.ready.wait(), 20)
    print("ready", flush=True)
    if flatten:
        await _flatten(engine)
    await asyncio.sleep(TRADING_SECONDS)  # the kill comes first


async def _flatten(engine: Engine) -> None:
    """Two positions and a resting order of the bot's, then the kill switch."""
    for symbol, side, quantity in (("AAPL", Side.BUY, 5), ("MSFT", Side.SELL, 7)):
        order = await engine.orders.submit(symbol, side, quantity, "to be flattened")
        assert await engine.orders.wait_done([order.order_ref], 10), order
    last = engine.portfolio.last_price["AAPL"]
    await engine.orders.submit("AAPL", Side.BUY, 1, "resting", OrderType.LIMIT,
                               round(last * 0.8, 2))
    await engine.wait_positions_settled(5)
    await engine.kill_switch.flatten("kill test", "bot")


def main(argv: list[str]) -> int:
    db, port, point, nth, speed, *settings = argv
    _install(point, int(nth))
    overrides = dict(setting.split("=", 1) for setting in settings)
    flatten = point in FLATTEN_POINTS
    if flatten:
        Trader.decide = lambda *_: None  # type: ignore[method-assign]
    asyncio.run(_trade(Path(db), int(port), float(speed), overrides, flatten))
    return NOT_REACHED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
