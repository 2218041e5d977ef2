"""Every piece of text the front-ends show: reports and alerts as `Doc`s, rendered to HTML or plain.

A `Doc` holds only plain strings; the renderers escape them, so no dynamic value can reach
Telegram's HTML parser unescaped. Tables are monospace `<pre>` blocks with short columns
(a phone shows about 35 characters), and long documents split under Telegram's 4,096 limit.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from engine.domain import Fill, Order
from engine.events import (
    BrokerErrorEvent,
    ConnectionEvent,
    DataEvent,
    FillEvent,
    LifecycleEvent,
    OrderEvent,
    ReconcileEvent,
    RiskEvent,
)
from engine.logs import redact
from engine.reports import (
    CancelReport,
    FlattenReport,
    HealthReport,
    JournalEntry,
    PnlReport,
    PositionsReport,
    Quote,
    RiskReport,
    StatusReport,
)

TELEGRAM_LIMIT = 4096
TITLE_LIMIT = 200  # a longer title (a long error) continues in the body, where it can split
_CELL_WIDTH = 10  # a phone shows ~35 monospace characters: keep columns short
_DASH = "–"


@dataclass(frozen=True, slots=True)
class Table:
    """A small table; the first column is left-aligned, the others right-aligned."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def lines(self) -> list[str]:
        cells = [self.header, *self.rows]
        columns = len(self.header)
        clipped = [tuple(_clip(str(c), _CELL_WIDTH) for c in row[:columns]) for row in cells]
        widths = [
            max(len(row[i]) if i < len(row) else 0 for row in clipped) for i in range(columns)
        ]

        def render(row: tuple[str, ...]) -> str:
            padded = [
                (row[i] if i < len(row) else "").ljust(widths[i])
                if i == 0
                else (row[i] if i < len(row) else "").rjust(widths[i])
                for i in range(columns)
            ]
            return " ".join(padded).rstrip()

        return [render(row) for row in clipped]


Block = str | Table


@dataclass(frozen=True, slots=True)
class Doc:
    """A titled message: plain-text lines and tables, rendered by `to_html` or `to_plain`."""

    title: str
    blocks: tuple[Block, ...] = ()
    icon: str = ""


# --- rendering -------------------------------------------------------------------------------


def mode_tag(mode: str) -> str:
    return {"sim": "[SIM]", "paper": "[PAPER]", "live": "[LIVE]"}.get(
        mode.lower(), f"[{mode.upper() or '?'}]"
    )


def telegram_length(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units), an upper bound after tags are parsed."""
    return len(text.encode("utf-16-le")) // 2


def _title_html(doc: Doc, mode: str, continued: bool) -> str:
    icon = f"{doc.icon} " if doc.icon else ""
    more = " (cont.)" if continued else ""
    return f"<b>{mode_tag(mode)}</b> {icon}<b>{html.escape(doc.title)}</b>{more}"


def _redacted(doc: Doc) -> Doc:
    """`doc` without secrets: an error's text shown to the user may come from a library, and
    PTB's hold the bot token. Table cells are too short to hold one."""
    blocks = tuple(redact(block) if isinstance(block, str) else block for block in doc.blocks)
    return Doc(redact(doc.title), blocks, doc.icon)


def _capped(doc: Doc) -> Doc:
    """`doc` with a title of at most TITLE_LIMIT characters; the rest opens the body."""
    if len(doc.title) <= TITLE_LIMIT:
        return doc
    cut = TITLE_LIMIT - 1
    return Doc(doc.title[:cut] + "…", ("…" + doc.title[cut:], *doc.blocks), doc.icon)


def to_html(doc: Doc, mode: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Render `doc` as Telegram HTML messages, each at most `limit` characters."""
    doc = _capped(_redacted(doc))
    parts: list[str] = []
    current = _title_html(doc, mode, continued=False)
    budget = limit

    def fits(extra: str) -> bool:
        return telegram_length(current) + telegram_length(extra) <= budget

    def flush() -> None:
        nonlocal current
        parts.append(current)
        current = _title_html(doc, mode, continued=True)

    for block in doc.blocks:
        if isinstance(block, Table):
            header, *rows = (html.escape(line) for line in block.lines())

            def pre(chunk: list[str], header: str = header) -> str:
                return "\n<pre>" + "\n".join([header, *chunk]) + "</pre>"

            chunk: list[str] = []
            for row in rows:
                if fits(pre([*chunk, row])):
                    chunk.append(row)
                    continue
                if chunk:
                    current += pre(chunk)
                flush()
                chunk = [row]
            if chunk or not rows:
                if not fits(pre(chunk)):
                    flush()
                current += pre(chunk)
            continue
        for piece in _hard_split(block, limit // 2):
            line = "\n" + html.escape(piece)
            if not fits(line):
                flush()
            current += line
    parts.append(current)
    return parts


def _hard_split(text: str, size: int) -> list[str]:
    """Cut a very long line before escaping, so an entity like &amp; is never cut in half."""
    if telegram_length(text) <= size:
        return [text]
    return [text[i : i + size // 6] for i in range(0, len(text), size // 6)]


def to_plain(doc: Doc, mode: str) -> str:
    """Render `doc` for a terminal: the tag and title, then indented lines and tables."""
    doc = _redacted(doc)
    icon = f"{doc.icon} " if doc.icon else ""
    out = [f"{mode_tag(mode)} {icon}{doc.title}"]
    for block in doc.blocks:
        lines = block.lines() if isinstance(block, Table) else block.splitlines() or [""]
        out.extend(f"  {line}" for line in lines)
    return "\n".join(out)


def one_line(doc: Doc) -> str:
    """The title and first line of a doc: a digest entry."""
    first = next((b for b in doc.blocks if isinstance(b, str) and b), "")
    return f"{doc.title}: {first}" if first else doc.title


# --- numbers and times -----------------------------------------------------------------------


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def qty(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return _DASH
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def price(value: float | None) -> str:
    if value is None or math.isnan(value):
        return _DASH
    if abs(value) >= 1 or value == 0:
        return f"{value:,.2f}"
    return f"{value:.4g}"


def money(value: float | None, signed: bool = True) -> str:
    if value is None or math.isnan(value):
        return _DASH
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


def clock(when: datetime | None, tz: tzinfo) -> str:
    return when.astimezone(tz).strftime("%H:%M:%S") if when else _DASH


def stamp(when: datetime | None, tz: tzinfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z").strip() if when else _DASH


def duration(seconds: float | None) -> str:
    if seconds is None:
        return _DASH
    seconds = max(round(seconds), 0)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


# --- replies to commands ---------------------------------------------------------------------


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


def positions_doc(report: PositionsReport) -> Doc:
    if not report.positions:
        return Doc("Positions: none", ("flat",))
    rows = tuple(
        (
            p.symbol + ("" if p.symbol in report.bot_symbols else "*"),
            qty(p.quantity),
            price(p.avg_cost),
            price(p.market_price),
            money(p.unrealized_pnl),
        )
        for p in report.positions
    )
    blocks: list[Block] = [Table(("sym", "qty", "avg", "last", "uPnL"), rows)]
    if any(p.symbol not in report.bot_symbols for p in report.positions):
        blocks.append("* not one of the bot's symbols")
    return Doc(f"Positions: {len(report.positions)}", tuple(blocks))


def orders_doc(orders: Sequence[Order]) -> Doc:
    if not orders:
        return Doc("Open orders: none")
    rows = tuple(
        (
            o.symbol,
            o.side.value,
            qty(o.remaining),
            o.order_type.value,
            price(o.limit_price if o.limit_price is not None else o.stop_price),
            o.status.value[:9],
        )
        for o in orders
    )
    return Doc(
        f"Open orders: {len(orders)}",
        (Table(("sym", "side", "qty", "type", "px", "status"), rows),),
    )


def trades_doc(fills: Sequence[Fill], tz: tzinfo) -> Doc:
    if not fills:
        return Doc("Trades: none yet")
    rows = tuple(
        (
            clock(f.time, tz),
            f.side.value[0],
            qty(f.quantity),
            f.symbol,
            price(f.price),
            money(f.realized_pnl),
        )
        for f in fills
    )
    return Doc(
        f"Last {len(fills)} trades", (Table(("time", "", "qty", "sym", "price", "rPnL"), rows),)
    )


def pnl_doc(report: PnlReport) -> Doc:
    blocks: list[Block] = [
        f"today: {money(report.today)} (realized {money(report.realized_today)}, "
        f"unrealized {money(report.unrealized)})",
        f"commissions: {money(report.commissions_today, signed=False)}",
        f"net liquidation: {money(report.net_liquidation, signed=False)}",
    ]
    if report.per_symbol:
        blocks.append(
            Table(("sym", "PnL"), tuple((s, money(v)) for s, v in report.per_symbol.items()))
        )
    return Doc(f"PnL {report.trading_day}: {money(report.today)}", tuple(blocks), icon="💰")


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


def quote_doc(quote: Quote, tz: tzinfo) -> Doc:
    return Doc(
        f"{quote.symbol}: {price(quote.last)}",
        (
            f"bid {price(quote.bid)}  ask {price(quote.ask)}  last {price(quote.last)}",
            f"at {stamp(quote.time, tz)}",
        ),
    )


def paused_doc(report: StatusReport) -> Doc:
    reason = f" ({report.pause_reason})" if report.pause_reason else ""
    return Doc(
        f"Paused{reason}", ("no new entries; exits and protective orders still work",), icon="⏸"
    )


def resumed_doc(report: StatusReport) -> Doc:
    return Doc(f"Resumed: {report.state.value}", icon="▶️")


def _closed_text(report: FlattenReport) -> str:
    return ", ".join(f"{c.symbol} {qty(abs(c.quantity))}" for c in report.closed)


def flatten_doc(report: FlattenReport) -> Doc:
    scope = "account" if report.scope == "account" else "bot"
    blocks: list[Block] = []
    if report.cancelled_orders:
        blocks.append(
            f"cancelled {len(report.cancelled_orders)} orders: "
            + ", ".join(report.cancelled_orders)
        )
    if report.not_closed:
        blocks.append("could not close:")
        blocks.extend(f"• {n}" for n in report.not_closed)
    if report.waiting_for_ib:
        blocks.append("waiting for IB (not closed again: a second /flatten would not help):")
        blocks.extend(f"• {w}" for w in report.waiting_for_ib)
    if report.already_flat:
        return Doc(f"Flat ({scope}): nothing to close", tuple(blocks), icon="✅")
    if report.flat:
        closed = _closed_text(report)
        return Doc(
            f"flat ({scope})" + (f": closed {closed}" if closed else ""), tuple(blocks), icon="✅"
        )
    closed = _closed_text(report)
    if closed:
        blocks.insert(0, f"closed {closed}")
    if report.waiting_for_ib and not report.not_closed:
        return Doc(f"NOT flat yet ({scope}): waiting for IB", tuple(blocks), icon="⏳")
    return Doc(f"NOT flat ({scope})", tuple(blocks), icon="🚨")


def cancel_doc(report: CancelReport) -> Doc:
    blocks: list[Block] = []
    if report.cancelled:
        blocks.append("cancelled: " + ", ".join(report.cancelled))
    if report.failed:
        blocks.append("failed:")
        blocks.extend(f"• {f}" for f in report.failed)
    title = f"Cancelled {len(report.cancelled)} orders ({report.scope})"
    if not report.cancelled and not report.failed:
        title = f"No open orders to cancel ({report.scope})"
    return Doc(title, tuple(blocks), icon="🚨" if report.failed else "✅")


def confirm_doc(action: str, scope_text: str, ttl: float) -> Doc:
    return Doc(f"Confirm {action}?", (scope_text, f"expires in {int(ttl)} s"), icon="❓")


def progress_doc(action: str, lines: Sequence[str]) -> Doc:
    return Doc(f"{action}…", tuple(lines[-15:]), icon="⏳")


def expired_doc(action: str) -> Doc:
    return Doc(
        f"{action}: confirmation expired, nothing was done", (f"send /{action} again",), icon="⌛"
    )


def cancelled_doc(action: str) -> Doc:
    return Doc(f"{action}: cancelled, nothing was done", icon="✖️")


def stale_command_doc(command: str, sent: datetime, tz: tzinfo, age_seconds: float) -> Doc:
    return Doc(
        f"Ignored {command}",
        (
            f"sent at {stamp(sent, tz)}, {duration(age_seconds)} ago: commands older than 60 s are "
            "not executed. Send it again if you still mean it.",
        ),
        icon="⌛",
    )


def read_only_doc(command: str) -> Doc:
    return Doc(f"{command} needs an operator", ("you have read-only access",), icon="🔒")


def anonymous_doc(command: str) -> Doc:
    return Doc(
        f"{command} needs an operator",
        ("you post anonymously, as the group: post as yourself to act",),
        icon="🔒",
    )


# --- alerts ----------------------------------------------------------------------------------


def fill_doc(event: FillEvent, tz: tzinfo) -> Doc:
    fill = event.fill
    lines: list[Block] = [
        f"{fill.side.value} {qty(fill.quantity)} {fill.symbol} @ {price(fill.price)}",
        f"commission: {money(fill.commission, signed=False)}"
        + ("" if event.final else " (not reported yet)"),
        f"position after: {qty(event.position_after)}",
    ]
    if fill.realized_pnl is not None:
        lines.append(f"realized PnL: {money(fill.realized_pnl)}")
    lines.append(f"at {clock(fill.time, tz)}  ref {fill.order_ref}")
    return Doc(
        f"Filled: {fill.side.value} {qty(fill.quantity)} {fill.symbol}", tuple(lines), icon="💹"
    )


def order_event_doc(event: OrderEvent) -> Doc:
    o = event.order
    code = f" (code {event.code})" if event.code is not None else ""
    what = f"{o.side.value} {qty(o.quantity)} {o.symbol} {o.order_type.value}"
    return Doc(
        f"Order {event.kind}: {what}",
        tuple(
            b
            for b in (
                f"{event.message}{code}" if event.message or code else "",
                f"ref {o.order_ref}",
            )
            if b
        ),
        icon="🚫" if event.kind == "rejected" else "↩️",
    )


def broker_error_doc(event: BrokerErrorEvent, tz: tzinfo) -> Doc:
    return Doc(
        f"IB error {event.code}: {event.meaning or event.message}",
        (event.message, f"at {clock(event.time, tz)}"),
        icon="❗" if event.level.value == "error" else "⚠️",
    )


def connection_doc(event: ConnectionEvent, tz: tzinfo) -> Doc:
    state = event.state.value
    detail = (event.detail,) if event.detail else ()
    if state == "connected":
        down = f" after {duration(event.downtime_seconds)}" if event.downtime_seconds else ""
        return Doc(
            f"Connection restored{down}", (*detail, f"at {clock(event.time, tz)}"), icon="🔌"
        )
    title = "IB servers unreachable" if state == "degraded" else "Connection to IB lost"
    return Doc(title, (*detail, f"at {clock(event.time, tz)}"), icon="🔴")


def risk_event_doc(event: RiskEvent, tz: tzinfo) -> Doc:
    symbol = f" {event.symbol}" if event.symbol else ""
    state = (f"engine {event.state.value}",) if event.state else ()
    return Doc(
        f"Risk {event.kind}{symbol}",
        (event.message, *state, f"at {clock(event.time, tz)}"),
        icon="🛡",
    )


def data_event_doc(event: DataEvent, tz: tzinfo) -> Doc:
    count = f" ×{event.count}" if event.count > 1 else ""
    return Doc(
        f"Data {event.kind} {event.symbol}{count}",
        (event.message, f"at {clock(event.time, tz)}"),
        icon="📉",
    )


def reconcile_doc(event: ReconcileEvent) -> Doc:
    lines = [f"• {d}" for d in event.differences]
    if event.adopted:
        lines.append(f"adopted {event.adopted} orders")
    return Doc(f"Reconciliation: {len(event.differences)} differences", tuple(lines), icon="🔎")


def lifecycle_doc(event: LifecycleEvent, tz: tzinfo) -> Doc:
    details = tuple(f"{k}: {_detail(v)}" for k, v in event.details.items())
    titles = {"startup": "Started", "shutdown": "Shutting down", "daily_summary": "Daily summary"}
    icons = {"startup": "🚀", "shutdown": "👋", "daily_summary": "📊"}
    return Doc(
        titles.get(event.kind, event.kind),
        (*details, f"at {stamp(event.time, tz)}"),
        icon=icons.get(event.kind, "ℹ️"),
    )


def _detail(value: object) -> str:
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return money(value, signed=False)
    return str(value)


def daily_summary_doc(pnl: PnlReport, status: StatusReport, fills_today: int) -> Doc:
    return Doc(
        f"Daily summary {pnl.trading_day}: {money(pnl.today)}",
        (
            f"realized {money(pnl.realized_today)}, unrealized {money(pnl.unrealized)}",
            f"commissions {money(pnl.commissions_today, signed=False)}; fills: {fills_today}",
            f"net liquidation {money(pnl.net_liquidation, signed=False)}",
            f"engine {status.state.value}, connection {status.connection.value}",
        ),
        icon="📊",
    )


def digest_doc(kind: str, summaries: Sequence[str], span_seconds: float) -> Doc:
    return Doc(
        f"{len(summaries)} {kind} in the last {duration(span_seconds)}",
        tuple(f"• {s}" for s in summaries),
        icon="📦",
    )


def dropped_doc(counts: dict[str, int], why: str) -> Doc:
    total = sum(counts.values())
    detail = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    return Doc(f"{total} alerts were dropped", (f"{detail}", why), icon="⚠️")


def stranger_doc(user: str, chat: str, text: str) -> Doc:
    return Doc(
        "Unauthorized access attempt",
        (
            f"user {user} in chat {chat}",
            f"sent: {_clip(text, 80)}",
            "they were told 'not authorized' and got no data; next alert for them in 1 h",
        ),
        icon="🚷",
    )


def chat_moved_doc(old: int, new: int) -> Doc:
    return Doc(
        "This group became a supergroup",
        (
            f"Telegram moved it from chat id {old} to {new}.",
            "Commands and alerts follow it (remembered across restarts).",
            f"Update TELEGRAM_ALLOWED_CHAT_IDS: replace {old} with {new}.",
        ),
        icon="🔀",
    )


def delayed_note(created: datetime, tz: tzinfo) -> str:
    return f"<i>delayed, from {html.escape(stamp(created, tz))}</i>\n"
