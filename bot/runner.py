"""`tradebot run`: settings → journal → gateway → engine → front-end, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Protocol

from bot.health import alive_problem
from bot.health_server import ExtraMetrics, HealthServer
from bot.instance_lock import InstanceLock
from bot.sd_notify import Notifier
from engine.broker import IBBroker
from engine.config import Settings
from engine.control import Control
from engine.engine import Engine
from engine.errors import ConfigurationError
from engine.journal import Journal
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
EXIT_FATAL = 1
EXIT_CONFIGURATION = 2

SIMULATED_BANNER = """
  ************************************************************************
  *  SIMULATED GATEWAY: prices are synthetic and no real orders are sent. *
  *  Set IB_HOST (and IB_PORT) in .env to trade on a real IB Gateway/TWS. *
  ************************************************************************"""


def run(settings: Settings) -> int:
    # Until the event loop takes SIGTERM over, it stops the process as Ctrl-C does (exit 0),
    # instead of killing it mid set-up (exit 143).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        # The lock comes first: a second instance must not write to the log, start a gateway
        # on the same state file or poll Telegram with the same token.
        with InstanceLock(settings.db_path):
            _setup_logging(settings)
            return asyncio.run(serve(settings))
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
                    symbols=[instrument.symbol for instrument in settings.symbols],
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
        await shut_down(engine, front_end)
        if failed.done() and not failed.cancelled():
            print(f"tradebot: {failed.result()}", file=sys.stderr)
            return EXIT_CONFIGURATION
        if engine.fatal is not None:
            print(f"tradebot: {engine.fatal}", file=sys.stderr)
            if isinstance(engine.fatal, ConfigurationError):
                return EXIT_CONFIGURATION
            return EXIT_FATAL
    return 0


async def shut_down(engine: Stoppable, front_end: FrontEnd) -> None:
    """Stop taking commands and let a running flatten finish while the broker is still
    connected, then stop the engine. The front-end's own stop (flushing the engine's last
    alerts) comes after, from the exit stack."""
    try:
        await front_end.stop_intake()
    except Exception:  # the engine must stop regardless
        log.exception("stopping the front-end's commands failed")
    try:
        await asyncio.wait_for(engine.stop(), SHUTDOWN_SECONDS)
    except TimeoutError:
        log.error("engine did not stop within %.0fs", SHUTDOWN_SECONDS)


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
