"""Reconciliation's pure plan (engine/reconciliation.py), case by case, as nautilus_trader tests
its reconciliation: a broker snapshot and what the engine knows in, the changes out.

Absence is no proof: an order the broker does not show stays UNKNOWN until executions settle
it, or until IB's servers have been up, with no trace of it and no change in its symbol's
position, for a whole grace period. The property test at the end holds the money rules over
random snapshots.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from engine.domain import Fill, Order, OrderStatus, Position, Side
from engine.ports import BrokerOrder, BrokerSnapshot
from engine.reconciliation import Change, NoTrace, Plan, Servers, plan

CLIENT_ID = 7
GRACE = 10.0
NOW = 1_000.0  # monotonic seconds
AT = datetime(2024, 5, 6, 14, 30, tzinfo=UTC)

A = "tb-aaaa0000aaaa0000"  # the bot's orders
B = "tb-bbbb1111bbbb1111"
HAND = "by-hand-42"  # someone else's order (no ORDER_REF_PREFIX)
REFS = (A, B, HAND)

UP = Servers(lost=False, up_since=0.0)  # up long before anything went missing
LOST = Servers(lost=True, up_since=None)


def order(ref: str = A, quantity: float = 10, symbol: str = "AAPL") -> Order:
    """One of the engine's unfinished orders (of unknown outcome, as after a drop)."""
    return Order(ref, symbol, Side.BUY, quantity, status=OrderStatus.UNKNOWN)


def at_broker(
    ref: str, status: OrderStatus, filled: float = 0.0, client_id: int = CLIENT_ID,
    quantity: float = 10,
) -> BrokerOrder:
    return BrokerOrder(ref, ib_order_id=11, perm_id=110, client_id=client_id, symbol="AAPL",
                       side=Side.BUY, quantity=quantity, filled=filled, status=status,
                       order_type="LMT", limit_price=100.0, stop_price=None)


def fill(ref: str, quantity: float, exec_id: str) -> Fill:
    return Fill(exec_id, ref, 110, AT, "AAPL", Side.BUY, quantity, 100.0)


def snapshot(
    open_orders: tuple[BrokerOrder, ...] = (), completed: tuple[BrokerOrder, ...] = (),
    fills: tuple[Fill, ...] = (), aapl: float = 0.0,
) -> BrokerSnapshot:
    positions = (Position("AAPL", aapl, 100.0),) if aapl else ()
    return BrokerSnapshot(open_orders, completed, fills, positions)


@dataclass(frozen=True)
class Given:
    snapshot: BrokerSnapshot = field(default_factory=snapshot)
    unfinished: tuple[Order, ...] = ()
    journaled: frozenset[str] = frozenset()
    no_trace: dict[str, NoTrace] = field(default_factory=dict)
    servers: Servers = UP
    now: float = NOW


@dataclass(frozen=True)
class Expect:
    changes: tuple[tuple[str, OrderStatus, float | None], ...] = ()  # (ref, status, filled)
    says: dict[str, str] = field(default_factory=dict)  # ref -> words its change's message has
    adopt: tuple[str, ...] = ()
    no_trace: dict[str, NoTrace] = field(default_factory=dict)
    recheck: bool = False
    mentioned: frozenset[str] = frozenset()  # refs the differences name


def run(given: Given) -> Plan:
    return plan(given.snapshot, {o.order_ref: o for o in given.unfinished},
                client_id=CLIENT_ID, journaled=given.journaled, no_trace=given.no_trace,
                servers=given.servers, now=given.now, grace=GRACE)


def mentioned(result: Plan) -> frozenset[str]:
    """The refs the differences name (their texts and types are free to change)."""
    return frozenset(ref for ref in REFS if any(ref in str(d) for d in result.differences))


CASES = [
    # --- the broker shows the order ---
    pytest.param(
        Given(snapshot(open_orders=(at_broker(A, OrderStatus.SUBMITTED, filled=3),)),
              unfinished=(order(A),)),
        Expect(changes=((A, OrderStatus.SUBMITTED, 3),)),
        id="open at the broker: its status and filled",
    ),
    pytest.param(
        Given(snapshot(completed=(at_broker(A, OrderStatus.FILLED, filled=10),)),
              unfinished=(order(A),)),
        Expect(changes=((A, OrderStatus.FILLED, 10),), mentioned=frozenset({A})),
        id="completed filled, with its filled",
    ),
    pytest.param(
        Given(snapshot(completed=(at_broker(A, OrderStatus.FILLED),),
                       fills=(fill(A, 6, "e1"), fill(A, 4, "e2"))),
              unfinished=(order(A),)),
        Expect(changes=((A, OrderStatus.FILLED, 10),), mentioned=frozenset({A})),
        id="completed filled, filled from its executions",
    ),
    pytest.param(
        Given(snapshot(completed=(at_broker(A, OrderStatus.CANCELLED),),
                       fills=(fill(A, 4, "e1"),)),
              unfinished=(order(A),)),
        Expect(changes=((A, OrderStatus.CANCELLED, 4),), mentioned=frozenset({A})),
        id="completed cancelled after a partial fill",
    ),
    pytest.param(
        Given(snapshot(completed=(at_broker(A, OrderStatus.REJECTED),)), unfinished=(order(A),)),
        Expect(changes=((A, OrderStatus.REJECTED, 0),), mentioned=frozenset({A})),
        id="completed rejected",
    ),
    # --- only executions ---
    pytest.param(
        Given(snapshot(fills=(fill(A, 6, "e1"), fill(A, 4, "e2"))), unfinished=(order(A),)),
        Expect(changes=((A, OrderStatus.FILLED, 10),), mentioned=frozenset({A})),
        id="only executions, all of it: filled",
    ),
    pytest.param(
        Given(snapshot(fills=(fill(A, 4, "e1"),)), unfinished=(order(A),)),
        Expect(changes=((A, OrderStatus.UNKNOWN, 4),), says={A: "4 of 10 filled"},
               recheck=True, mentioned=frozenset({A})),
        id="only executions, part of it: the rest unknown",
    ),
    # --- absent: unknown until proven gone ---
    pytest.param(
        Given(snapshot(aapl=5), unfinished=(order(A),)),
        Expect(changes=((A, OrderStatus.UNKNOWN, None),), says={A: "not seen"},
               no_trace={A: NoTrace(NOW, 5)}, recheck=True, mentioned=frozenset({A})),
        id="absent, first time: unknown, missed from now",
    ),
    pytest.param(
        Given(unfinished=(order(A),), servers=LOST),
        Expect(changes=((A, OrderStatus.UNKNOWN, None),), says={A: "IB's servers"},
               no_trace={A: NoTrace(NOW, 0)}, recheck=True, mentioned=frozenset({A})),
        id="absent, first time, IB's servers lost",
    ),
    pytest.param(
        Given(unfinished=(order(A),), no_trace={A: NoTrace(NOW - 100_000, 0)}, servers=LOST),
        Expect(changes=((A, OrderStatus.UNKNOWN, None),), says={A: "IB's servers"},
               no_trace={A: NoTrace(NOW - 100_000, 0)}, recheck=True),
        id="absent for ages while IB's servers are lost: never cancelled",
    ),
    pytest.param(
        Given(unfinished=(order(A),), no_trace={A: NoTrace(NOW - 100_000, 0)},
              servers=Servers(lost=True, up_since=NOW - 100_000)),
        Expect(changes=((A, OrderStatus.UNKNOWN, None),), says={A: "IB's servers"},
               no_trace={A: NoTrace(NOW - 100_000, 0)}, recheck=True),
        id="absent for ages, IB's servers lost with an up_since left over: never cancelled",
    ),
    pytest.param(
        Given(unfinished=(order(A),), no_trace={A: NoTrace(NOW - 100_000, 0)},
              servers=Servers(lost=False, up_since=None)),
        Expect(changes=((A, OrderStatus.UNKNOWN, None),), no_trace={A: NoTrace(NOW - 100_000, 0)},
               recheck=True),
        id="absent for ages, servers' uptime not known: never cancelled",
    ),
    pytest.param(
        Given(unfinished=(order(A),), no_trace={A: NoTrace(NOW - 100, 0)},
              servers=Servers(lost=False, up_since=NOW - GRACE + 0.5)),
        Expect(changes=((A, OrderStatus.UNKNOWN, None),), says={A: "not seen"},
               no_trace={A: NoTrace(NOW - 100, 0)}, recheck=True),
        id="absent, servers up for less than the grace",
    ),
    pytest.param(
        Given(unfinished=(order(A),), no_trace={A: NoTrace(NOW - 100, 0)},
              servers=Servers(lost=False, up_since=NOW - GRACE)),
        Expect(changes=((A, OrderStatus.CANCELLED, None),), says={A: "no trace"},
               mentioned=frozenset({A})),
        id="absent, servers came up after it was missed: a grace from their return",
    ),
    pytest.param(
        Given(snapshot(aapl=5), unfinished=(order(A),), no_trace={A: NoTrace(NOW - GRACE, 5)}),
        Expect(changes=((A, OrderStatus.CANCELLED, None),), says={A: "no trace"},
               mentioned=frozenset({A})),
        id="absent a whole grace, servers up, same position: cancelled",
    ),
    pytest.param(
        Given(snapshot(aapl=5), unfinished=(order(A),),
              no_trace={A: NoTrace(NOW - GRACE + 0.5, 5)}),
        Expect(changes=((A, OrderStatus.UNKNOWN, None),),
               no_trace={A: NoTrace(NOW - GRACE + 0.5, 5)}, recheck=True),
        id="absent not quite a grace: still unknown",
    ),
    pytest.param(
        Given(snapshot(aapl=5), unfinished=(order(A),), no_trace={A: NoTrace(NOW - 100, 0)}),
        Expect(changes=((A, OrderStatus.UNKNOWN, None),), no_trace={A: NoTrace(NOW, 5)},
               recheck=True),
        id="absent, but its position changed: the grace starts again",
    ),
    # --- the bot's orders the engine does not track ---
    pytest.param(
        Given(snapshot(open_orders=(at_broker(B, OrderStatus.SUBMITTED),))),
        Expect(adopt=(B,), mentioned=frozenset({B})),
        id="open, ours, not tracked, not journaled: adopted",
    ),
    pytest.param(
        Given(snapshot(open_orders=(at_broker(B, OrderStatus.SUBMITTED),)),
              journaled=frozenset({B})),
        Expect(),
        id="open, ours, not tracked, journaled: not adopted",
    ),
    pytest.param(
        Given(snapshot(open_orders=(at_broker(B, OrderStatus.SUBMITTED, client_id=3),))),
        Expect(mentioned=frozenset({B})),
        id="open under another client id: told, not adopted",
    ),
    pytest.param(
        Given(snapshot(open_orders=(at_broker(HAND, OrderStatus.SUBMITTED),))),
        Expect(),
        id="someone else's open order: ignored",
    ),
]


@pytest.mark.parametrize(("given", "expect"), CASES)
def test_plan(given: Given, expect: Expect) -> None:
    result = run(given)

    assert [(c.order_ref, c.status, c.filled) for c in result.changes] == list(expect.changes)
    for change in result.changes:
        assert expect.says.get(change.order_ref, "") in (change.message or "")
    assert [found.order_ref for found in result.adopt] == list(expect.adopt)
    assert result.no_trace == expect.no_trace
    assert result.recheck is expect.recheck
    assert mentioned(result) == expect.mentioned


def test_an_order_open_at_the_broker_takes_its_ids_and_loses_its_old_message() -> None:
    result = run(Given(snapshot(open_orders=(at_broker(A, OrderStatus.SUBMITTED),)),
                       unfinished=(order(A),)))

    # The message an unknown order had ("sent, not seen at the broker yet") no longer holds.
    assert result.changes == [Change(A, OrderStatus.SUBMITTED, 0.0, "", 11, 110)]


def test_only_the_bots_fills_are_recovered() -> None:
    # The bot's fills whether or not the order is still unfinished (the engine drops the ones
    # it has by exec id); never an execution of someone else's order.
    ours, done, theirs = fill(A, 4, "e1"), fill(B, 2, "e2"), fill(HAND, 9, "e3")
    result = run(Given(snapshot(fills=(ours, done, theirs)), unfinished=(order(A),)))

    assert result.fills == [ours, done]


# --- the money rules, over random snapshots --------------------------------------------------

SYMBOLS = ("AAPL", "MSFT")
BROKER_STATUSES = (OrderStatus.PENDING, OrderStatus.SUBMITTED, OrderStatus.PARTIAL,
                   OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED)


def random_case(rng: random.Random) -> Given:
    """Orders the engine knows, each open, completed or absent at the broker, with executions
    (some of them someone else's), positions, earlier misses and IB's servers, all at random."""
    unfinished, open_orders, completed, fills = [], [], [], []
    for n in range(rng.randint(1, 6)):
        ref = f"tb-{n:016x}"
        mine = order(ref, quantity=rng.choice((1, 5, 10)), symbol=rng.choice(SYMBOLS))
        if rng.random() < 0.8:
            unfinished.append(mine)
        where = rng.choice(("open", "completed", "absent", "absent"))
        if where != "absent":
            found = BrokerOrder(ref, n, 100 + n, rng.choice((CLIENT_ID, 3)), mine.symbol,
                                Side.BUY, mine.quantity, rng.choice((0, 1)),
                                rng.choice(BROKER_STATUSES), "MKT", None, None)
            (open_orders if where == "open" else completed).append(found)
        for k in range(rng.choice((0, 0, 1, 2))):
            fills.append(Fill(f"{ref}-e{k}", ref, 100 + n, AT, mine.symbol, Side.BUY,
                              rng.choice((1, 5)), 100.0))
    fills.append(Fill("x", HAND, 1, AT, "AAPL", Side.BUY, 3, 100.0))
    positions = tuple(Position(s, rng.choice((-5, 0, 5)), 100.0) for s in SYMBOLS
                      if rng.random() < 0.7)
    now = rng.uniform(0, 200)
    no_trace = {o.order_ref: NoTrace(rng.uniform(now - 100, now), rng.choice((-5, 0, 5)))
                for o in unfinished if rng.random() < 0.6}
    lost = rng.random() < 0.3
    # Lost with an up_since too: the two are kept apart (engine/connection.py).
    up_since = None if rng.random() < 0.1 else rng.uniform(now - 100, now)
    return Given(
        BrokerSnapshot(tuple(open_orders), tuple(completed), tuple(fills), positions),
        tuple(unfinished), frozenset(), no_trace, Servers(lost, up_since), now,
    )


def test_absence_never_cancels_an_executed_order_nor_one_while_ibs_servers_are_lost() -> None:
    inferred_cancels = 0
    for seed in range(400):
        given = random_case(random.Random(seed))
        result = run(given)
        reported = {o.order_ref: o.status for o in (*given.snapshot.open_orders,
                                                    *given.snapshot.completed_orders)}
        executed = {f.order_ref for f in given.snapshot.fills}

        assert sorted(c.order_ref for c in result.changes) == sorted(
            o.order_ref for o in given.unfinished), f"seed {seed}: one change per order"
        for change in result.changes:
            if change.status is not OrderStatus.CANCELLED or (
                reported.get(change.order_ref) is OrderStatus.CANCELLED
            ):
                continue  # the broker's own word is not an inference
            inferred_cancels += 1
            assert change.order_ref not in executed, f"seed {seed}: {change}"
            assert not given.servers.lost, f"seed {seed}: {change}"
    assert inferred_cancels > 20  # the random cases do reach the write-off
