"""Replies about the bot itself: help, errors, status, risk, health, logs, pause and resume."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import tzinfo

from bot.messages.document import Block, Doc, Table
from bot.messages.numbers import clock, duration, money, qty, stamp
from engine.reports import HealthReport, JournalEntry, RiskReport, StatusReport


def help_doc(entries: Iterable[tuple[str, str, bool]]) -> Doc:
    """`entries`: (usage, description, acting)."""
    lines = [
        f"/{usage} — {text}{' (operator)' if acting else ''}" for usage, text, acting in entries
    ]
    return Doc("Commands", (*lines, "Acting commands ask for confirmation where it matters."))


def error_doc(message: str) -> Doc:
    return Doc(message, icon="⚠️")


def status_doc(report: StatusReport, tz: tzinfo) -> Doc:
    state = report.state.value + (f" ({report.pause_reason})" if report.pause_reason else "")
    params = ", ".join(f"{k}={v}" for k, v in report.strategy_params.items())
    last_bars = Table(
        ("symbol", "last bar"),
        tuple((s, clock(report.last_bar_time.get(s), tz)) for s in report.symbols),
    )
    return Doc(
        f"Status: {state}",
        (
            f"connection: {report.connection.value}",
            f"account: {report.account}",
            f"strategy: {report.strategy}" + (f" ({params})" if params else ""),
            f"equity: {money(report.equity, signed=False)}  today: {money(report.today_pnl)}",
            f"uptime: {duration(report.uptime_seconds)}",
            f"broker time: {stamp(report.broker_time, tz)}",
            last_bars,
        ),
        icon="🟢" if report.state.value == "RUNNING" else "⏸",
    )


def risk_doc(report: RiskReport, tz: tzinfo) -> Doc:
    state = report.state.value + (f" ({report.pause_reason})" if report.pause_reason else "")
    blocks: list[Block] = [
        f"state: {state}",
        f"today: {money(report.today_pnl)}; loss limit {money(-abs(report.max_daily_loss))}, "
        f"{money(report.loss_remaining, signed=False)} left",
        f"max position {qty(report.max_position)}, "
        f"max notional {money(report.max_notional, signed=False)}",
        f"orders last minute: {report.orders_last_minute}/{report.max_orders_per_minute}",
        f"stale data: {', '.join(report.stale_symbols) or 'none'}",
        f"outside trading hours: {', '.join(report.outside_hours_symbols) or 'none'}",
    ]
    if report.recent_refusals:
        blocks.append("recent refusals:")
        blocks.extend(f"• {clock(r.time, tz)} {r.symbol}: order refused: {r.reason}"
                      for r in report.recent_refusals)
    return Doc("Risk", tuple(blocks), icon="🛡")


def health_doc(report: HealthReport, tz: tzinfo) -> Doc:
    rows = tuple(
        (
            s.symbol,
            clock(s.last_bar_time, tz),
            duration(s.age_seconds),
            "STALE" if s.stale else "ok",
        )
        for s in report.symbols
    )
    healthy = report.connection.value == "connected" and not any(s.stale for s in report.symbols)
    return Doc(
        f"Health: {report.connection.value}",
        (
            f"connected since: {stamp(report.connected_since, tz)}",
            f"disconnects: {report.disconnects}",
            f"loop lag: p99 {report.loop_lag_ms_p99:.1f} ms, max {report.loop_lag_ms_max:.1f} ms",
            f"last alert delivered: {stamp(report.last_alert_delivered, tz)}",
            Table(("sym", "last bar", "age", ""), rows),
        ),
        icon="✅" if healthy else "⚠️",
    )


def logs_doc(entries: Sequence[JournalEntry], tz: tzinfo) -> Doc:
    if not entries:
        return Doc("Logs: no recent warnings or errors")
    lines = tuple(f"{clock(e.at, tz)} {e.level.upper()} {e.kind}: {e.message}" for e in entries)
    return Doc(f"Last {len(entries)} warnings and errors", lines)


def paused_doc(report: StatusReport) -> Doc:
    reason = f" ({report.pause_reason})" if report.pause_reason else ""
    return Doc(
        f"Paused{reason}", ("no new entries; exits and protective orders still work",), icon="⏸"
    )


def resumed_doc(report: StatusReport) -> Doc:
    return Doc(f"Resumed: {report.state.value}", icon="▶️")
