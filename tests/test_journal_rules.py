"""The journal's rules that money depends on (engine/journal.py): a newer schema is refused and
left untouched, open orders are exactly those not known final, a fill is kept once, an order's
broker ids are never lost by a later update, times are stored in UTC."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine.domain import Fill, Order, OrderStatus, OrderType, OrderUpdate, Side, Signal
from engine.errors import ConfigurationError
from engine.journal import Journal
from engine.journal_rows import (
    MIGRATIONS,
    SCHEMA_VERSION,
    equity_stmt,
    fill_commission_stmt,
    fill_stmt,
    insert_order_stmt,
    iso,
    order_event_stmt,
    parse_iso,
    signal_stmt,
    update_order_stmt,
)

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


@pytest.fixture
async def journal(tmp_path: Path):
    opened = await Journal.open(tmp_path / "j.sqlite3")
    try:
        yield opened
    finally:
        await opened.close()


def _order(ref: str, status: OrderStatus = OrderStatus.INTENT, **fields: object) -> Order:
    values: dict[str, object] = dict(
        order_ref=ref, symbol="AAPL", side=Side.BUY, quantity=10, status=status,
        created_at=T0, reason="test",
    )
    values.update(fields)
    return Order(**values)  # type: ignore[arg-type]


def _fill(exec_id: str, at: datetime = T0, **fields: object) -> Fill:
    values: dict[str, object] = dict(
        exec_id=exec_id, order_ref="tb-1", perm_id=7, time=at, symbol="AAPL", side=Side.BUY,
        quantity=10, price=100.0,
    )
    values.update(fields)
    return Fill(**values)  # type: ignore[arg-type]


# --- schema ----------------------------------------------------------------------------


def _file_with_version(path: Path, version: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {version}")
    db.close()


def _version_and_tables(path: Path) -> tuple[int, list[str]]:
    with sqlite3.connect(path) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master ORDER BY name")]
    db.close()
    return version, tables


async def test_a_schema_newer_by_one_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "newer.sqlite3"
    _file_with_version(path, SCHEMA_VERSION + 1)
    with pytest.raises((RuntimeError, ConfigurationError), match="newer"):
        await Journal.open(path)
    assert _version_and_tables(path) == (SCHEMA_VERSION + 1, [])


async def test_the_current_schema_opens_without_migrating_again(tmp_path: Path) -> None:
    path = tmp_path / "current.sqlite3"
    first = await Journal.open(path)
    await first.execute(fill_stmt(_fill("e1")))
    await first.close()
    again = await Journal.open(path)  # a migration run twice would fail: tables exist
    try:
        assert await again.schema_version() == SCHEMA_VERSION
        assert await again.has_fill("e1")
    finally:
        await again.close()


@pytest.mark.parametrize("start", range(SCHEMA_VERSION))
async def test_every_older_schema_is_upgraded_step_by_step(tmp_path: Path, start: int) -> None:
    path = tmp_path / f"v{start}.sqlite3"
    with sqlite3.connect(path) as db:
        for number in range(start):
            db.executescript(MIGRATIONS[number])
        db.execute(f"PRAGMA user_version = {start}")
    db.close()
    opened = await Journal.open(path)
    try:
        assert await opened.schema_version() == SCHEMA_VERSION
        assert await opened.outbox_pending("telegram") == []  # the newest table exists
    finally:
        await opened.close()


# --- orders ----------------------------------------------------------------------------


async def test_open_orders_are_exactly_those_not_known_final(journal: Journal) -> None:
    for status in OrderStatus:
        await journal.execute(insert_order_stmt(_order(f"tb-{status.name}", status)))
    open_refs = {order.order_ref for order in await journal.open_orders()}
    assert open_refs == {
        "tb-INTENT", "tb-PENDING", "tb-SUBMITTED", "tb-PARTIAL", "tb-UNKNOWN",
    }


async def test_open_orders_oldest_first(journal: Journal) -> None:
    await journal.execute(insert_order_stmt(_order("tb-late", created_at=T0 + timedelta(1))))
    await journal.execute(insert_order_stmt(_order("tb-early", created_at=T0)))
    assert [o.order_ref for o in await journal.open_orders()] == ["tb-early", "tb-late"]


async def test_an_order_round_trips_every_field(journal: Journal) -> None:
    order = _order("tb-1", OrderStatus.PENDING, side=Side.SELL, quantity=2.5,
                   order_type=OrderType.STOP_LIMIT, limit_price=99.5, stop_price=99.0,
                   ib_order_id=12, perm_id=34)
    await journal.execute(insert_order_stmt(order))
    stored = await journal.order("tb-1")
    assert stored is not None
    assert (stored.symbol, stored.side, stored.quantity, stored.order_type) == (
        "AAPL", Side.SELL, 2.5, OrderType.STOP_LIMIT,
    )
    assert (stored.limit_price, stored.stop_price, stored.status) == (
        99.5, 99.0, OrderStatus.PENDING,
    )
    assert (stored.ib_order_id, stored.perm_id, stored.reason) == (12, 34, "test")
    assert stored.created_at == T0
    assert await journal.order("tb-missing") is None


async def test_an_update_never_loses_the_brokers_ids(journal: Journal) -> None:
    await journal.execute(insert_order_stmt(_order("tb-1")))
    await journal.execute(update_order_stmt("tb-1", OrderStatus.PENDING, ib_order_id=5))
    await journal.execute(update_order_stmt("tb-1", OrderStatus.SUBMITTED, perm_id=9))
    # perm_id 0 is what IB sends before it knows one: it must not overwrite the real one.
    await journal.execute(update_order_stmt("tb-1", OrderStatus.FILLED, ib_order_id=None,
                                            perm_id=0))
    stored = await journal.order("tb-1")
    assert stored is not None
    assert (stored.status, stored.ib_order_id, stored.perm_id) == (OrderStatus.FILLED, 5, 9)


async def test_a_modify_changes_only_what_it_names(journal: Journal) -> None:
    await journal.execute(insert_order_stmt(
        _order("tb-1", order_type=OrderType.LIMIT, limit_price=100.0, stop_price=None)
    ))
    await journal.execute(update_order_stmt("tb-1", OrderStatus.SUBMITTED, limit_price=101.0))
    stored = await journal.order("tb-1")
    assert stored is not None
    assert (stored.quantity, stored.limit_price, stored.stop_price) == (10, 101.0, None)
    await journal.execute(update_order_stmt("tb-1", OrderStatus.SUBMITTED, quantity=4,
                                            stop_price=98.0))
    stored = await journal.order("tb-1")
    assert stored is not None
    assert (stored.quantity, stored.limit_price, stored.stop_price) == (4, 101.0, 98.0)


async def test_an_update_touches_only_its_own_order(journal: Journal) -> None:
    await journal.execute(insert_order_stmt(_order("tb-1")))
    await journal.execute(insert_order_stmt(_order("tb-2")))
    assert await journal.execute(update_order_stmt("tb-1", OrderStatus.CANCELLED)) == 1
    other = await journal.order("tb-2")
    assert other is not None and other.status is OrderStatus.INTENT


async def test_order_events_keep_each_broker_answer(journal: Journal) -> None:
    for status, filled in ((OrderStatus.SUBMITTED, 0), (OrderStatus.PARTIAL, 4),
                           (OrderStatus.FILLED, 10)):
        await journal.execute(order_event_stmt(
            OrderUpdate("tb-1", status, filled, 10 - filled, 100.5 if filled else 0, T0,
                        message=f"m{filled}")
        ))
    rows = await journal._rows(
        "SELECT order_ref, at, status, filled, remaining, avg_price, message"
        " FROM order_events ORDER BY id"
    )
    assert [tuple(row) for row in rows] == [
        ("tb-1", iso(T0), "Submitted", 0, 10, 0, "m0"),
        ("tb-1", iso(T0), "PartiallyFilled", 4, 6, 100.5, "m4"),
        ("tb-1", iso(T0), "Filled", 10, 0, 100.5, "m10"),
    ]


# --- fills -----------------------------------------------------------------------------


async def test_a_fill_is_kept_once_and_its_first_version_wins(journal: Journal) -> None:
    assert await journal.execute(fill_stmt(_fill("e1", price=100.0))) == 1
    assert await journal.execute(fill_stmt(_fill("e1", price=999.0))) == 0
    assert await journal.has_fill("e1") and not await journal.has_fill("e2")
    fills = await journal.fills_for("tb-1")
    assert [(f.exec_id, f.price) for f in fills] == [("e1", 100.0)]


async def test_a_fill_without_a_perm_id_reads_back_as_zero(journal: Journal) -> None:
    await journal.execute(fill_stmt(_fill("e1", perm_id=None)))
    assert [f.perm_id for f in await journal.recent_fills()] == [0]


async def test_commission_lands_on_its_own_fill(journal: Journal) -> None:
    await journal.execute(fill_stmt(_fill("e1")))
    await journal.execute(fill_stmt(_fill("e2")))
    await journal.execute(fill_commission_stmt("e2", 1.25, -3.5))
    fills = {f.exec_id: f for f in await journal.recent_fills()}
    assert (fills["e1"].commission, fills["e1"].realized_pnl) == (None, None)
    assert (fills["e2"].commission, fills["e2"].realized_pnl) == (1.25, -3.5)


async def test_recent_fills_newest_first_since_and_limit(journal: Journal) -> None:
    for minute in range(4):
        await journal.execute(fill_stmt(_fill(f"e{minute}", T0 + timedelta(minutes=minute),
                                              order_ref=f"tb-{minute % 2}")))
    assert [f.exec_id for f in await journal.recent_fills()] == ["e3", "e2", "e1", "e0"]
    assert [f.exec_id for f in await journal.recent_fills(limit=2)] == ["e3", "e2"]
    since = T0 + timedelta(minutes=2)
    assert [f.exec_id for f in await journal.recent_fills(since=since)] == ["e3", "e2"]
    assert [f.exec_id for f in await journal.fills_for("tb-1")] == ["e1", "e3"]
    fill = (await journal.recent_fills(limit=1))[0]
    assert (fill.symbol, fill.side, fill.quantity, fill.perm_id) == ("AAPL", Side.BUY, 10, 7)
    assert (fill.order_ref, fill.price) == ("tb-1", 100.0)
    assert fill.time == T0 + timedelta(minutes=3)


# --- signals, events, equity, state, outbox ----------------------------------------------


async def test_signals_are_journaled_with_their_details(journal: Journal) -> None:
    await journal.execute(signal_stmt(Signal("AAPL", T0, -10, "cross", {"fast": 1.5})))
    rows = await journal._rows("SELECT at, symbol, target, reason, details FROM signals")
    assert [tuple(r) for r in rows] == [(iso(T0), "AAPL", -10, "cross", '{"fast": 1.5}')]


async def test_events_filter_by_level_newest_first(journal: Journal) -> None:
    await journal.log_event("info", "a", "first", at=T0)
    await journal.log_event("warning", "b", "second", {"n": 1}, at=T0)
    await journal.log_event("error", "c", "third", at=T0)
    assert [e.message for e in await journal.recent_events()] == ["third", "second", "first"]
    warned = await journal.recent_events(levels=("warning",))
    assert [(e.kind, e.details) for e in warned] == [("b", {"n": 1})]
    assert [e.message for e in await journal.recent_events(limit=1)] == ["third"]
    assert await journal.recent_events(since=T0 + timedelta(seconds=1)) == []
    since_before = await journal.recent_events(since=T0 - timedelta(seconds=1))
    assert [(e.at, e.level, e.kind) for e in since_before] == [
        (T0, "error", "c"), (T0, "warning", "b"), (T0, "info", "a"),
    ]
    two_levels = await journal.recent_events(levels=("warning", "error"))
    assert [e.message for e in two_levels] == ["third", "second"]


async def test_equity_curve_oldest_first_without_unknown_values(journal: Journal) -> None:
    await journal.execute(equity_stmt(T0 + timedelta(minutes=1), 101.0, 0, 1))
    await journal.execute(equity_stmt(T0, 100.0, 0, 0))
    await journal.execute(equity_stmt(T0 + timedelta(minutes=2), None, 0, 0))
    assert await journal.equity_curve() == [(T0, 100.0), (T0 + timedelta(minutes=1), 101.0)]
    assert await journal.equity_curve(limit=1) == [(T0 + timedelta(minutes=1), 101.0)]


async def test_state_is_overwritten_not_duplicated(journal: Journal) -> None:
    assert await journal.get_state("engine_state") is None
    assert await journal.get_state("engine_state", "RUNNING") == "RUNNING"
    await journal.set_state("engine_state", "PAUSED")
    await journal.set_state("engine_state", "RUNNING")
    assert await journal.get_state("engine_state") == "RUNNING"


async def test_outbox_pending_until_delivered_per_channel(journal: Journal) -> None:
    first = await journal.outbox_add("telegram", "one")
    second = await journal.outbox_add("telegram", "two")
    await journal.outbox_add("console", "other")
    assert first and second > first
    assert await journal.outbox_pending("telegram") == [(first, "one"), (second, "two")]
    assert await journal.outbox_pending("telegram", limit=1) == [(first, "one")]
    await journal.outbox_done(first)
    assert await journal.outbox_pending("telegram") == [(second, "two")]


# --- times -----------------------------------------------------------------------------


def test_times_are_stored_in_utc_and_naive_ones_refused() -> None:
    plus_two = datetime(2026, 11, 20, 17, 0, tzinfo=timezone(timedelta(hours=2)))
    assert iso(plus_two) == "2026-11-20T15:00:00.000000+00:00"
    assert parse_iso(iso(plus_two)) == T0
    assert parse_iso(None) is None and parse_iso("") is None
    with pytest.raises(ValueError, match="naive"):
        iso(datetime(2026, 11, 20, 15, 0))
    assert iso().endswith("+00:00")
