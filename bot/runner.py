"""`tradebot run`: settings → journal → gateway → engine → front-end (and the journal's daily
prune), until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from bot.health import alive_problem
from bot.health_server import ExtraMetrics, HealthServer
from bot.instance_lock import InstanceLock
from bot.journal_upkeep import JournalUpkeep
from bot.sd_notify import Notifier
from engine.broker import IBBroker
from engine.config import Settings
from engine.control import Control
from engine.engine import Engine
from engine.errors import ConfigurationError
from engine.journal import Journal
from engine.kill_switch import CANCEL_WAIT_SECONDS
from engine.logs import setup_logging

log = logging.getLogger("tradebot")


class FrontEnd(Protocol):
    async def start(self) -> None: ...
    async def stop_intake(self) -> None:
        """Take no more commands; let a running flatten finish (each front-end bounds it)."""

    async def stop(self) -> None: ...
    async def wait_failed(self) -> ConfigurationError:
        """Return when the front-end can no longer serve (Telegram refused the token later):
        a bot nobody can command must not go on trading."""


class Stoppable(Protocol):
    async def stop(self) -> None: ...


SHUTDOWN_SECONDS = 4.0
# The kill switch's wait for the broker to confirm cancels, and a margin.
CANCEL_ON_EXIT_SECONDS = CANCEL_WAIT_SECONDS + 2.0
EXIT_FATAL = 1
EXIT_CONFIGURATION = 2

SIMULATED_BANNER = """
  ************************************************************************
  *  SIMULATED GATEWAY: prices are synthetic and no real orders are sent. *
  *  Set IB_HOST (and IB_PORT) in .env to trade on a real IB Gateway/TWS. *
  ************************************************************************"""


def _run_loop(settings: Settings) -> int:
    """asyncio.run, with SIGTERM held while the event loop is being built: one landing in the
    middle left a half-built loop whose clean-up printed a traceback. A SIGTERM that came
    meanwhile stops the process as soon as the loop exists (exit 0)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    runner = asyncio.Runner()
    try:
        runner.get_loop()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        return runner.run(serve(settings))
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        runner.close()


def run(settings: Settings) -> int:
    # Until the event loop takes SIGTERM over, it stops the process as Ctrl-C does (exit 0),
    # instead of killing it mid set-up (exit 143).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        # The lock comes first: a second instance must not write to the log, start a gateway
        # on the same state file or poll Telegram with the same token.
        with InstanceLock(settings.db_path):
            _setup_logging(settings)
            return _run_loop(settings)
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 0
    except ConfigurationError as exc:
        print(f"tradebot: {exc}", file=sys.stderr)
        return EXIT_CONFIGURATION


def _setup_logging(settings: Settings) -> None:
    token = settings.telegram_bot_token.get_secret_value()
    try:
        setup_logging(settings.log_level, settings.log_dir, secrets=[token] if token else [])
    except OSError as exc:
        problem = (
            "a part of the path is a file, not a folder"
            if exc.errno in (errno.ENOTDIR, errno.EEXIST)
            else exc.strerror
        )
        log_file = Path(settings.log_dir or ".") / "tradebot.log"
        raise ConfigurationError(
            f"LOG_DIR: cannot write the log file {log_file} "
            f"({problem}); LOG_DIR must be a writable folder"
        ) from None


def sim_state_path(settings: Settings) -> Path:
    """Where the embedded gateway keeps its account, so a restart finds its orders again."""
    return settings.db_path.with_name(settings.db_path.name + ".ibsim.json")


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> int:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        notifier = Notifier()  # systemd's; closed last, so the watchdog is fed to the end
        stack.push_async_callback(notifier.close)
        journal = await Journal.open(settings.db_path)
        stack.push_async_callback(journal.close)
        if settings.simulated:
            from ibsim import SimGateway
            from ibsim.persistence import StateFileError

            try:
                simulator = SimGateway(
                    seed=settings.sim_seed,
                    speed=settings.sim_speed,
                    symbols=list(dict.fromkeys(i.ib_symbol for i in settings.symbols)),
                    state_file=sim_state_path(settings),
                )
            except StateFileError as exc:
                raise ConfigurationError(str(exc)) from None
            gateway = await stack.enter_async_context(simulator)
            print(SIMULATED_BANNER, file=sys.stderr, flush=True)
            log.warning(
                "simulated gateway on 127.0.0.1:%s (speed %gx, seed %s)",
                gateway.port,
                settings.sim_speed,
                settings.sim_seed,
            )
            broker = IBBroker.from_settings(settings, host="127.0.0.1", port=gateway.port)
            engine = Engine(settings, journal, broker, mode="sim",
                            clock_speed=settings.sim_speed)
        else:
            broker = IBBroker.from_settings(settings)
            engine = Engine(settings, journal, broker)
        control = Control(engine)
        front_end = _front_end(settings, control, journal)
        await front_end.start()
        stack.push_async_callback(front_end.stop)
        if settings.health_port is not None:
            health = HealthServer(engine, settings.health_port,
                                  lambda: broker.last_connect_attempt, _alert_metrics(front_end))
            await health.start()
            stack.push_async_callback(health.stop)
        await engine.start()
        # Retention runs beside the engine, after its start, in short batches.
        upkeep = JournalUpkeep(journal, timedelta(days=settings.journal_retention_days))
        upkeep.start()
        stack.push_async_callback(upkeep.stop)
        notifier.start(engine.ready, lambda: alive_problem(
            engine, broker.last_connect_attempt, time.monotonic()))
        stopped = asyncio.ensure_future(engine.wait_stopped())
        asked = asyncio.ensure_future(stop.wait())
        failed = asyncio.ensure_future(front_end.wait_failed())
        await asyncio.wait({stopped, asked, failed}, return_when=asyncio.FIRST_COMPLETED)
        for waiter in (stopped, asked, failed):
            waiter.cancel()
        log.info("shutting down")
        notifier.stopping()
        before_stop = (
            (lambda: cancel_on_exit(engine, control)) if settings.cancel_orders_on_exit else None
        )
        await shut_down(engine, front_end, before_stop)
        if failed.done() and not failed.cancelled():
            print(f"tradebot: {failed.result()}", file=sys.stderr)
            return EXIT_CONFIGURATION
        if engine.fatal is not None:
            print(f"tradebot: {engine.fatal}", file=sys.stderr)
            if isinstance(engine.fatal, ConfigurationError):
                return EXIT_CONFIGURATION
            return EXIT_FATAL
    return 0


async def shut_down(
    engine: Stoppable,
    front_end: FrontEnd,
    before_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Stop taking commands and let a running flatten finish while the broker is still
    connected, then `before_stop` (CANCEL_ORDERS_ON_EXIT), then stop the engine (which flushes
    the journal). The front-end's own stop (flushing the engine's last alerts) comes after,
    from the exit stack. `longest_shutdown()` says how long all of it can take."""
    try:
        await front_end.stop_intake()
    except Exception:  # the engine must stop regardless
        log.exception("stopping the front-end's commands failed")
    if before_stop is not None:
        try:
            await before_stop()
        except Exception:  # the engine must stop regardless
            log.exception("cancelling the orders at exit failed")
    try:
        await asyncio.wait_for(engine.stop(), SHUTDOWN_SECONDS)
    except TimeoutError:
        log.error("engine did not stop within %.0fs", SHUTDOWN_SECONDS)


async def cancel_on_exit(engine: Engine, control: Control) -> None:
    """CANCEL_ORDERS_ON_EXIT: nothing new is sent, then the bot's working orders are cancelled
    while the broker is still connected, before the engine flushes the journal; bounded by
    CANCEL_ON_EXIT_SECONDS. Never the kill switch's closes (a /flatten finished before this)."""
    engine.risk.halt("shutting down")
    # As during a flatten: an order whose intent is being written now (a bracket's next child,
    # say) is dropped instead of being placed after the cancels.
    engine.orders.halt_reason = "shutting down"
    if not engine.orders.working():
        return
    try:
        report = await asyncio.wait_for(control.cancel_all("shutdown", "bot"),
                                        CANCEL_ON_EXIT_SECONDS)
    except TimeoutError:
        log.error("CANCEL_ORDERS_ON_EXIT: the cancels were not confirmed within %.0fs",
                  CANCEL_ON_EXIT_SECONDS)
        return
    left = ", ".join(sorted({item.reason.value for item in report.failed}))
    log.warning("CANCEL_ORDERS_ON_EXIT: %d order(s) cancelled, %d left working%s",
                len(report.cancelled), len(report.failed), f" ({left})" if left else "")


def longest_shutdown() -> float:
    """The longest path from SIGTERM to exit, in seconds, from the code's own bounds: stopping
    Telegram's polling, a running /flatten allowed to finish (ACTION_GRACE), the cancels of
    CANCEL_ORDERS_ON_EXIT, the engine's stop, and the last alerts' drain. systemd's
    TimeoutStopSec and Docker's stop_grace_period must exceed it (tests/test_deploy.py)."""
    from bot.telegram.app import TelegramTuning

    tuning = TelegramTuning()
    return (tuning.read_timeout + tuning.stop_grace + CANCEL_ON_EXIT_SECONDS
            + SHUTDOWN_SECONDS + tuning.drain_timeout)


def _alert_metrics(front_end: FrontEnd) -> ExtraMetrics:
    """The Telegram sender's counters for /metrics (the console has none to show)."""
    delivery = getattr(front_end, "delivery", None)

    def metrics() -> dict[str, tuple[str, str, float]]:
        if delivery is None:
            return {}
        return {
            "tradebot_alerts_queued": ("gauge", "Telegram messages waiting to go out.",
                                       delivery.pending),
            "tradebot_alerts_dropped_total": ("counter", "Alerts dropped: the queue was full.",
                                              delivery.dropped_total),
            "tradebot_telegram_retries_total": ("counter", "Telegram sends retried.",
                                                delivery.retries),
        }

    return metrics


def _front_end(settings: Settings, control: Control, journal: Journal) -> FrontEnd:
    token = settings.telegram_bot_token.get_secret_value()
    if token:
        from bot.telegram.app import TelegramFrontEnd

        return TelegramFrontEnd(
            token=token,
            allowed_chat_ids=set(settings.telegram_allowed_chat_ids),
            operator_ids=set(settings.telegram_operator_ids),
            base_url=settings.telegram_api_base_url,
            alert_levels=settings.alert_levels,
            daily_summary_time=settings.daily_summary_time,
            display_tz=settings.tz,
            control=control,
            outbox=journal,
        )
    from bot.console import ConsoleFrontEnd

    return ConsoleFrontEnd(control, alert_levels=settings.alert_levels, display_tz=settings.tz)
