"""What "healthy" means, for systemd's watchdog and for `GET /healthz`, and the numbers
`GET /metrics` shows; read from the engine, never written to it.

Two questions with two answers, on purpose:

- **Alive** (systemd's watchdog, `alive_problem`): a restart would help only when the process is
  stuck. It is alive while (1) the event loop runs the watchdog's ping at all (a blocked loop
  sends nothing) and its measured lag p99 over the last 30 s stays under `LOOP_LAG_LIMIT`;
  (2) the engine has not stopped on a fatal error; and (3) the broker's socket is up (IB's
  servers may be away: DEGRADED is IB's maintenance, a restart cannot fix it), or its reconnect
  loop started a connect attempt within `RECONNECT_BOUND` seconds. A gateway away for hours
  (the weekly two-factor login) is therefore alive: restarting the bot would not bring it back.
- **Healthy** (`GET /healthz`, `health_problem`): the bot is doing its job now. Set up after a
  connect, connected with IB's servers up, not halted, and no symbol's bars stale while its
  contract's trading hours are open (no bars come outside them). Paused is healthy: a user
  asked for it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from engine.domain import ConnectionState, EngineState, OrderStatus
from engine.engine import Engine
from engine.events import FillEvent, OrderEvent, Subscription
from engine.hours import ALWAYS_OPEN

# The broker's longest wait between connect attempts (60 s backoff, +20% jitter), one attempt's
# timeout (10 s), and slack for a busy machine.
RECONNECT_BOUND = 120.0
LOOP_LAG_LIMIT = 5.0  # seconds, p99: every bar and order waits this long; something is stuck

LastAttempt = Callable[[], float | None]  # monotonic time of the latest connect attempt


def loop_lag(engine: Engine) -> tuple[float, float]:
    """The engine's loop lag (p99, max) in seconds over its recent samples."""
    lags = sorted(engine.loop_lag_samples) or [0.0]
    return lags[min(len(lags) - 1, int(len(lags) * 0.99))], lags[-1]


def alive_problem(engine: Engine, last_attempt: float | None, now: float) -> str | None:
    """Why the process is stuck (systemd's watchdog must not be fed), or None; `now` and
    `last_attempt` are monotonic. See the module docstring."""
    if engine.fatal is not None:
        return f"stopped: {engine.fatal}"
    p99, _ = loop_lag(engine)
    if p99 > LOOP_LAG_LIMIT:
        return f"event loop lag p99 {p99:.1f}s"
    if engine.broker.is_connected:
        return None
    idle = now - (last_attempt if last_attempt is not None else engine.started_wall)
    if idle > RECONNECT_BOUND:
        return f"no connect attempt for {idle:.0f}s"
    return None


def stale_symbols(engine: Engine, now: datetime) -> list[str]:
    """Symbols whose bars are stale while their trading hours are open."""
    stale = []
    for symbol in engine.symbols:
        info = engine.broker.contract(symbol)
        hours = info.trading_hours if info is not None else ALWAYS_OPEN
        if engine.is_stale(symbol) and hours.is_open(now):
            stale.append(symbol)
    return stale


def health_problem(engine: Engine) -> str | None:
    """Why the bot is not doing its job now (one line), or None; see the module docstring."""
    if engine.risk.state is EngineState.HALTED:
        return f"halted: {engine.risk.pause_reason}"
    if not engine.ready.is_set():
        return "starting: not connected and set up yet"
    if engine.connection is not ConnectionState.CONNECTED:
        return f"not connected: {engine.connection.value}"
    stale = stale_symbols(engine, engine.clock.now())
    if stale:
        return "stale bars: " + ", ".join(stale)
    return None


class EventCounts:
    """Counts the engine's fill and order events (a subscription to its bus)."""

    def __init__(self, engine: Engine) -> None:
        self._subscription: Subscription = engine.bus.subscribe(
            maxsize=10_000, kinds=(FillEvent, OrderEvent)
        )
        self.fills = 0
        self.order_events: Counter[str] = Counter()

    def update(self) -> None:
        while self._subscription.pending():
            event = self._subscription.get_nowait()
            if isinstance(event, FillEvent):
                self.fills += event.final  # announced again when its commission is known
            else:
                self.order_events[event.kind.value] += 1

    def close(self) -> None:
        self._subscription.close()


def _line(name: str, value: float, labels: Mapping[str, str] | None = None) -> str:
    if labels:
        inner = ",".join(
            f'{key}="{_escape(text)}"' for key, text in labels.items()
        )
        return f"{name}{{{inner}}} {value:g}"
    return f"{name} {value:g}"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Metrics:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(
        self, name: str, kind: str, help_text: str,
        samples: Iterable[tuple[Mapping[str, str] | None, float]],
    ) -> None:  # fmt: skip
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        self.lines.extend(_line(name, value, labels) for labels, value in samples)


def metrics_text(
    engine: Engine,
    counts: EventCounts,
    last_attempt: float | None,
    extra: Mapping[str, tuple[str, str, float]] | None = None,
) -> str:
    """The bot's numbers in Prometheus' text exposition format (version 0.0.4). `extra`:
    name → (type, help, value), from the front-end."""
    counts.update()
    now = time.monotonic()
    m = _Metrics()
    m.add("tradebot_up", "gauge", "1 while the process answers.", [(None, 1)])
    m.add("tradebot_healthy", "gauge", "1 when GET /healthz answers 200.",
          [(None, health_problem(engine) is None)])
    m.add("tradebot_alive", "gauge", "1 while systemd's watchdog is fed.",
          [(None, alive_problem(engine, last_attempt, now) is None)])
    m.add("tradebot_ready", "gauge", "1 once connected, reconciled and warmed up.",
          [(None, engine.ready.is_set())])
    m.add("tradebot_connection_state", "gauge", "The link to the gateway (one is 1).",
          [({"state": state.value}, engine.connection is state) for state in ConnectionState])
    m.add("tradebot_disconnects_total", "counter", "Connection drops since start.",
          [(None, engine.disconnects)])
    m.add("tradebot_engine_state", "gauge", "RUNNING, PAUSED or HALTED (one is 1).",
          [({"state": state.value}, engine.risk.state is state) for state in EngineState])
    p99, worst = loop_lag(engine)
    m.add("tradebot_loop_lag_seconds", "gauge", "Event loop lag over the last 30 s.",
          [({"quantile": "0.99"}, p99), ({"quantile": "1"}, worst)])
    m.add("tradebot_uptime_seconds", "gauge", "Seconds since the engine started.",
          [(None, engine.uptime())])
    statuses = Counter(order.status for order in engine.orders.orders.values())
    m.add("tradebot_orders", "gauge",
          "Orders in memory (working, or done in the last two hours) by status.",
          [({"status": status.value}, statuses[status]) for status in OrderStatus])
    m.add("tradebot_orders_working", "gauge", "The bot's working orders.",
          [(None, len(engine.orders.working()))])
    m.add("tradebot_order_events_total", "counter", "Orders rejected or cancelled, by kind.",
          [({"kind": kind}, n) for kind, n in sorted(counts.order_events.items())])
    m.add("tradebot_fills_total", "counter", "Executions of the bot's orders since start.",
          [(None, counts.fills)])
    broker_now = engine.clock.now()
    ages = []
    for symbol, state in engine.symbols.items():
        if state.last_bar is not None:
            age = (broker_now - state.last_bar.time).total_seconds()
            ages.append(({"symbol": symbol}, age))
    m.add("tradebot_bar_age_seconds", "gauge", "Broker time since the last bar began.", ages)
    stale = set(stale_symbols(engine, broker_now))
    m.add("tradebot_symbol_stale", "gauge", "1 when bars are stale in trading hours.",
          [({"symbol": symbol}, symbol in stale) for symbol in engine.symbols])
    m.add("tradebot_journal_write_failures", "gauge", "Journal commits failing in a row.",
          [(None, engine.writer.failures)])
    pnl = engine.portfolio.today_pnl()
    m.add("tradebot_today_pnl", "gauge", "Today's PnL, account currency.", [(None, pnl)])
    for name, (kind, help_text, value) in (extra or {}).items():
        m.add(name, kind, help_text, [(None, value)])
    return "\n".join(m.lines) + "\n"
