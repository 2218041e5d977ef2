"""The journal's rows: the schema and its migrations, the time format, the statement builders
(`*_stmt`: one SQL statement and its parameters per row written) and the conversion of rows
read back into domain types. No I/O here; `engine/journal.py` runs the statements.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from engine.domain import (
    EngineState,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    Signal,
)
from engine.logs import redact

# Each entry upgrades the schema from version i to i + 1. Append; never edit a released one.
MIGRATIONS: tuple[str, ...] = (
    # 1: the core tables
    """
    CREATE TABLE orders (
        order_ref   TEXT PRIMARY KEY,
        created_at  TEXT NOT NULL,
        symbol      TEXT NOT NULL,
        side        TEXT NOT NULL,
        quantity    REAL NOT NULL,
        order_type  TEXT NOT NULL,
        limit_price REAL,
        stop_price  REAL,
        status      TEXT NOT NULL,
        ib_order_id INTEGER,
        perm_id     INTEGER,
        reason      TEXT NOT NULL DEFAULT '',
        updated_at  TEXT NOT NULL
    );
    CREATE TABLE order_events (
        id        INTEGER PRIMARY KEY,
        order_ref TEXT NOT NULL,
        at        TEXT NOT NULL,
        status    TEXT NOT NULL,
        filled    REAL,
        remaining REAL,
        avg_price REAL,
        message   TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE fills (
        exec_id      TEXT PRIMARY KEY,
        order_ref    TEXT NOT NULL,
        perm_id      INTEGER,
        time         TEXT NOT NULL,
        symbol       TEXT NOT NULL,
        side         TEXT NOT NULL,
        quantity     REAL NOT NULL,
        price        REAL NOT NULL,
        commission   REAL,
        realized_pnl REAL
    );
    CREATE TABLE signals (
        id      INTEGER PRIMARY KEY,
        at      TEXT NOT NULL,
        symbol  TEXT NOT NULL,
        target  REAL NOT NULL,
        reason  TEXT NOT NULL,
        details TEXT
    );
    CREATE TABLE events (
        id      INTEGER PRIMARY KEY,
        at      TEXT NOT NULL,
        level   TEXT NOT NULL,
        kind    TEXT NOT NULL,
        message TEXT NOT NULL,
        details TEXT
    );
    CREATE TABLE equity (
        at              TEXT NOT NULL,
        net_liquidation REAL,
        realized_pnl    REAL,
        unrealized_pnl  REAL
    );
    CREATE TABLE state (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: undelivered alerts survive a restart; indexes for the queries front-ends make
    """
    CREATE TABLE outbox (
        id           INTEGER PRIMARY KEY,
        channel      TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        payload      TEXT NOT NULL,
        delivered_at TEXT
    );
    CREATE INDEX outbox_pending ON outbox (channel, delivered_at);
    CREATE INDEX order_events_ref ON order_events (order_ref);
    CREATE INDEX fills_time ON fills (time);
    CREATE INDEX fills_order_ref ON fills (order_ref);
    CREATE INDEX events_at ON events (at);
    CREATE INDEX orders_status ON orders (status);
    """,
    # 3: historical bars for backtests and charts (`tradebot download`); one row per bar
    """
    CREATE TABLE bars (
        symbol   TEXT NOT NULL,
        bar_size TEXT NOT NULL,
        time     TEXT NOT NULL,
        open     REAL,
        high     REAL,
        low      REAL,
        close    REAL,
        volume   REAL,
        PRIMARY KEY (symbol, bar_size, time)
    );
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def iso(moment: datetime | None = None) -> str:
    """ISO 8601 in UTC, the only time format the journal stores."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the journal")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


Statement = tuple[str, tuple[Any, ...]]


def insert_order_stmt(order: Order) -> Statement:
    now = iso()
    return (
        "INSERT INTO orders (order_ref, created_at, symbol, side, quantity, order_type,"
        " limit_price, stop_price, status, ib_order_id, perm_id, reason, updated_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            order.order_ref,
            iso(order.created_at) if order.created_at else now,
            order.symbol,
            order.side.value,
            order.quantity,
            order.order_type.value,
            order.limit_price,
            order.stop_price,
            order.status.value,
            order.ib_order_id,
            order.perm_id,
            order.reason,
            now,
        ),
    )


def update_order_stmt(
    order_ref: str,
    status: OrderStatus,
    *,
    ib_order_id: int | None = None,
    perm_id: int | None = None,
    quantity: float | None = None,
    limit_price: float | None = None,
    stop_price: float | None = None,
) -> Statement:
    return (
        "UPDATE orders SET status = ?, updated_at = ?,"
        " ib_order_id = COALESCE(?, ib_order_id), perm_id = COALESCE(?, perm_id),"
        " quantity = COALESCE(?, quantity), limit_price = COALESCE(?, limit_price),"
        " stop_price = COALESCE(?, stop_price) WHERE order_ref = ?",
        (status.value, iso(), ib_order_id, perm_id or None, quantity, limit_price, stop_price,
         order_ref),
    )


def order_event_stmt(update: OrderUpdate) -> Statement:
    return (
        "INSERT INTO order_events (order_ref, at, status, filled, remaining, avg_price,"
        " message) VALUES (?,?,?,?,?,?,?)",
        (update.order_ref, iso(update.time), update.status.value, update.filled,
         update.remaining, update.avg_price, update.message),
    )


def fill_stmt(fill: Fill) -> Statement:
    return (
        "INSERT OR IGNORE INTO fills (exec_id, order_ref, perm_id, time, symbol, side,"
        " quantity, price, commission, realized_pnl) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (fill.exec_id, fill.order_ref, fill.perm_id, iso(fill.time), fill.symbol,
         fill.side.value, fill.quantity, fill.price, fill.commission, fill.realized_pnl),
    )


def fill_commission_stmt(
    exec_id: str, commission: float, realized_pnl: float | None
) -> Statement:
    return (
        "UPDATE fills SET commission = ?, realized_pnl = ? WHERE exec_id = ?",
        (commission, realized_pnl, exec_id),
    )


def signal_stmt(signal: Signal) -> Statement:
    return (
        "INSERT INTO signals (at, symbol, target, reason, details) VALUES (?,?,?,?,?)",
        (iso(signal.time), signal.symbol, signal.target, signal.reason,
         json.dumps(signal.details)),
    )


def event_stmt(
    level: str,
    kind: str,
    message: str,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> Statement:
    # Events carry exception texts, and a library's may hold a secret (PTB's holds the token).
    return (
        "INSERT INTO events (at, level, kind, message, details) VALUES (?,?,?,?,?)",
        (iso(at), level, kind, redact(message),
         redact(json.dumps(details, default=str)) if details is not None else None),
    )


def equity_stmt(
    at: datetime,
    net_liquidation: float | None,
    realized_pnl: float | None,
    unrealized_pnl: float | None,
) -> Statement:
    return (
        "INSERT INTO equity (at, net_liquidation, realized_pnl, unrealized_pnl)"
        " VALUES (?,?,?,?)",
        (iso(at), net_liquidation, realized_pnl, unrealized_pnl),
    )


def state_stmt(key: str, value: str) -> Statement:
    return (
        "INSERT INTO state (key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def state_statements(state: EngineState, reason: str, by: str) -> list[Statement]:
    """The rows that make a restart resume `state`, and the event row that says who set it."""
    return [
        state_stmt("engine_state", state.value),
        state_stmt("pause_reason", reason),
        event_stmt("info", "state", f"{state.value} by {by}: {reason}"),
    ]


def order_from_row(row: aiosqlite.Row) -> Order:
    return Order(
        order_ref=row["order_ref"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        quantity=row["quantity"],
        order_type=OrderType(row["order_type"]),
        limit_price=row["limit_price"],
        stop_price=row["stop_price"],
        reason=row["reason"],
        status=OrderStatus(row["status"]),
        ib_order_id=row["ib_order_id"],
        perm_id=row["perm_id"],
        created_at=parse_iso(row["created_at"]),
        updated_at=parse_iso(row["updated_at"]),
    )


def fill_from_row(row: aiosqlite.Row) -> Fill:
    return Fill(
        exec_id=row["exec_id"],
        order_ref=row["order_ref"],
        perm_id=row["perm_id"] or 0,
        time=datetime.fromisoformat(row["time"]),
        symbol=row["symbol"],
        side=Side(row["side"]),
        quantity=row["quantity"],
        price=row["price"],
        commission=row["commission"],
        realized_pnl=row["realized_pnl"],
    )
