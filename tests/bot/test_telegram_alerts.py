"""Alerts: content, levels, digests, escaping, and delivery while Telegram misbehaves."""

from __future__ import annotations

import asyncio
import html
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.alerts import Alert
from bot.messages.document import Doc, to_html
from bot.messages.events import digest_doc, fill_doc
from bot.telegram.app import TelegramFrontEnd
from bot.telegram.outbox import Envelope
from engine.domain import ConnectionState, EngineState, Order, OrderType, Side
from engine.events import ConnectionEvent, FillEvent, LifecycleEvent, OrderEvent, RiskEvent
from engine.journal import Journal
from tests.bot.fake_control import FakeControl, make_fill
from tests.bot.harness import OPERATOR, READER, LagProbe, MemoryOutbox, running_front_end
from tests.fakebotapi import FakeBotAPI

NOW = datetime.now(UTC)


def fill_event(i: int = 1, symbol: str = "AAPL", **kwargs: object) -> FillEvent:
    return FillEvent(make_fill(symbol=symbol, exec_id=f"e{i}", **kwargs), position_after=10.0 * i)  # type: ignore[arg-type]


async def test_fill_alert_has_the_numbers(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl
) -> None:
    fill = make_fill("AAPL", Side.SELL, 10, 187.25, commission=1.02, realized_pnl=72.5)
    control.publish(FillEvent(fill, position_after=0.0))
    alert = await api.wait_for(
        "sendMessage", lambda r: "Filled" in r.text and r.int("chat_id") == OPERATOR
    )
    for expected in (
        "[SIM]",
        "SELL 10 AAPL @ 187.25",
        "commission: 1.02",
        "position after: 0",
        "realized PnL: +72.50",
    ):
        assert expected in alert.text
    assert alert.params.get("disable_notification") != "true"
    # Every allowed chat gets it.
    await api.wait_for("sendMessage", lambda r: "Filled" in r.text and r.int("chat_id") == READER)


async def test_fill_waits_briefly_for_its_commission(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl
) -> None:
    first = make_fill(commission=None, exec_id="x1")
    control.publish(FillEvent(first, position_after=10, final=False))
    control.publish(FillEvent(make_fill(commission=0.35, exec_id="x1"), position_after=10))
    alert = await api.wait_for("sendMessage", lambda r: "Filled" in r.text)
    assert "commission: 0.35" in alert.text
    # Without a final event the fill is still told, after the grace period.
    control.publish(
        FillEvent(make_fill(commission=None, exec_id="x2"), position_after=20, final=False)
    )
    late = await api.wait_for("sendMessage", lambda r: "not reported yet" in r.text)
    assert "position after: 20" in late.text


async def test_levels_off_and_silent(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    levels = {"fills": "off", "risk": "silent"}
    async with running_front_end(api, control, outbox, {OPERATOR}, alert_levels=levels) as bot:
        control.publish(fill_event())
        control.publish(
            RiskEvent("paused", "daily loss limit reached", NOW, state=EngineState.PAUSED)
        )
        risk = await api.wait_for("sendMessage", lambda r: "Risk paused" in r.text)
        assert risk.params["disable_notification"] == "true"
        await bot.delivery.wait_idle()
    assert api.calls("sendMessage", lambda r: "Filled" in r.text) == []


async def test_other_alert_kinds(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl
) -> None:
    order = Order("r9", "MSFT", Side.BUY, 5, OrderType.LIMIT, limit_price=1.0)
    control.publish(OrderEvent(order, "rejected", "price too far from market", code=201))
    control.publish(ConnectionEvent(ConnectionState.DISCONNECTED, NOW))
    control.publish(ConnectionEvent(ConnectionState.CONNECTED, NOW, downtime_seconds=95))
    control.publish(LifecycleEvent("startup", NOW, {"mode": "sim", "symbols": ["AAPL", "MSFT"]}))
    for needle in (
        "Order rejected: BUY 5 MSFT LMT",
        "Connection to IB lost",
        "Connection restored after 1m 35s",
        "Started",
    ):
        await api.wait_for("sendMessage", lambda r, n=needle: n in r.text)


async def test_html_hostile_text_is_escaped(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl
) -> None:
    control.publish(fill_event(symbol="<A&B>"))
    alert = await api.wait_for("sendMessage", lambda r: "Filled" in r.text)
    assert "&lt;A&amp;B&gt;" in alert.text and "<A&B>" not in alert.text
    control.publish(RiskEvent("refused", "<script>alert(1)</script> & more", NOW))
    risk = await api.wait_for("sendMessage", lambda r: "Risk refused" in r.text)
    assert html.escape("<script>alert(1)</script> & more") in risk.text


async def test_flood_becomes_a_digest(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    async with running_front_end(api, control, outbox, {OPERATOR}) as bot:
        for i in range(20):
            control.publish(fill_event(i + 1))
        digest = await api.wait_for("sendMessage", lambda r: "15 fills in the last" in r.text)
        await bot.delivery.wait_idle()
    for i in range(6, 21):
        assert f"ref-e{i}" not in digest.text  # one line per fill, not the whole alert
    assert digest.text.count("Filled: BUY 10 AAPL") == 15
    # 5 alone, 15 in one digest; a backlog may share messages but nothing is lost.
    texts = "".join(r.text for r in api.sent(OPERATOR))
    assert texts.count("Filled: BUY 10 AAPL") == 20
    assert len(api.sent(OPERATOR)) <= 6


async def test_403_is_journaled_not_retried(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    async with running_front_end(api, control, outbox, {OPERATOR}) as bot:
        api.fail("403", "sendMessage")
        control.publish(fill_event())
        await api.wait_for("sendMessage", answered=False)
        await bot.delivery.wait_idle()
        assert bot.delivery.failed == 1
    assert len(api.calls("sendMessage")) == 1
    assert "telegram_delivery" in outbox.kinds()
    assert not await outbox.outbox_pending("telegram")


async def _deliver_through_fault(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox, kind: str, seconds: float
) -> LagProbe:
    """Publish fills while Telegram fails with `kind`; return the loop-lag probe."""
    async with running_front_end(
        api, control, outbox, {OPERATOR}, tune={"burst_limit": 1000}
    ) as bot:
        async with LagProbe() as probe:
            api.fail(kind, "sendMessage", seconds=seconds, retry_after=1)
            for i in range(30):
                control.publish(fill_event(i + 1))
                await asyncio.sleep(0.01)  # the engine trading on; each publish returns at once
            await asyncio.wait_for(bot.delivery.wait_idle(), 15)
        assert bot.delivery.retries >= 1
    texts = "".join(r.text for r in api.sent(OPERATOR))
    for i in range(1, 31):
        assert (
            f"ref-e{i}\n" in texts or f"ref-e{i}" in texts.split("ref-e")[0] or f"ref-e{i}" in texts
        )
    assert texts.count("Filled: BUY") == 30  # none lost
    assert not await outbox.outbox_pending("telegram")
    return probe


async def test_429_alerts_arrive_after_recovery(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    probe = await _deliver_through_fault(api, control, outbox, "429", 1.5)
    assert probe.max_ms < 100, probe.max_ms


async def test_502_alerts_arrive_after_recovery(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    probe = await _deliver_through_fault(api, control, outbox, "502", 1.0)
    assert probe.max_ms < 100, probe.max_ms


async def test_hang_alerts_arrive_after_recovery(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    probe = await _deliver_through_fault(api, control, outbox, "hang", 2.0)
    assert probe.max_ms < 100, probe.max_ms


async def test_queue_overflow_sends_a_summary(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    tune = {"burst_limit": 1000, "queue_bound": 10}
    async with running_front_end(api, control, outbox, {OPERATOR}, tune=tune) as bot:
        api.fail("502", "sendMessage", seconds=1.0)
        for i in range(25):
            control.publish(fill_event(i + 1))
        summary = await api.wait_for(
            "sendMessage", lambda r: "alerts were dropped" in r.text, timeout=10
        )
        await bot.delivery.wait_idle()
    assert "fills" in summary.text
    texts = "".join(r.text for r in api.sent(OPERATOR))
    delivered = texts.count("Filled: BUY")
    assert delivered >= 10  # everything up to the queue bound
    assert delivered + bot.delivery.dropped_total == 25  # the rest is counted and told


async def test_undelivered_alerts_survive_a_restart(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    async with running_front_end(api, control, outbox, {OPERATOR}, tune={"stop_grace": 0.1}) as bot:
        api.fail("hang", "sendMessage")
        control.publish(fill_event(7))
        await api.wait_for("sendMessage", answered=False)
    pending = await outbox.outbox_pending("telegram")
    assert len(pending) == 1 and "ref-e7" in json.loads(pending[0][1])["html"]
    api.heal()
    async with running_front_end(api, control, outbox, {OPERATOR}) as bot:
        await api.wait_for("sendMessage", lambda r: "ref-e7" in r.text)
        await bot.delivery.wait_idle()
    assert not await outbox.outbox_pending("telegram")


async def test_hung_polling_is_restarted(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    # A long read timeout so only the watchdog (2 × poll timeout) can notice the hang.
    tune = {"poll_timeout": 1, "read_timeout": 30.0}
    async with running_front_end(api, control, outbox, {OPERATOR}, tune=tune) as bot:
        since = time.monotonic()
        api.fail("hang", "getUpdates", count=1)
        await api.wait_for("getUpdates", lambda r: r.at >= since, answered=False, timeout=5)
        api.inject_command("/status", chat_id=OPERATOR)
        await api.wait_for("sendMessage", lambda r: "Status" in r.text, timeout=10)
        assert bot.polling_restarts >= 1


async def test_outbox_works_with_the_real_journal(
    api: FakeBotAPI, control: FakeControl, tmp_path: Path
) -> None:
    journal = await Journal.open(tmp_path / "journal.db")
    try:
        async with running_front_end(api, control, journal, {OPERATOR}) as bot:
            api.fail("hang", "sendMessage")
            control.publish(fill_event(3))
            await api.wait_for("sendMessage", answered=False)
        assert len(await journal.outbox_pending("telegram")) == 1
        api.heal()
        async with running_front_end(api, control, journal, {OPERATOR}) as bot:
            await api.wait_for("sendMessage", lambda r: "ref-e3" in r.text)
            await bot.delivery.wait_idle()
        assert await journal.outbox_pending("telegram") == []
    finally:
        await journal.close()


async def test_a_full_delayed_part_still_fits(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    """A digest part already near 4,096 characters, sent late: the 'delayed' note must not
    push it over Telegram's limit (a 400 would drop it for good)."""
    summaries = [f"Filled: BUY {i} AAPL: BUY {i} AAPL @ 187.25" for i in range(300)]
    parts = to_html(digest_doc("fills", summaries, 60), "sim")
    old = datetime.now(UTC) - timedelta(minutes=5)
    for part in parts:
        envelope = Envelope(OPERATOR, part, "", "fills", False, old)
        await outbox.outbox_add("telegram", envelope.to_json())
    async with running_front_end(api, control, outbox, {OPERATOR}) as bot:
        await bot.delivery.wait_idle()
        assert bot.delivery.failed == 0 and bot.delivery.delivered == len(parts)
    texts = "".join(r.text for r in api.sent(OPERATOR))
    assert texts.count("Filled: BUY") == 300 and "delayed, from" in texts


async def test_reports_and_security_alerts_are_never_dropped(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    tune = {"burst_limit": 1000, "queue_bound": 3}
    async with running_front_end(api, control, outbox, {OPERATOR}, tune=tune) as bot:
        api.fail("502", "sendMessage")
        for i in range(10):
            await bot.delivery.submit(Alert("fills", fill_doc(fill_event(i + 1), UTC)))
        await bot.delivery.submit(Alert("security", Doc("Unauthorized access attempt")))
        await bot.delivery.send_doc(OPERATOR, Doc("flat (bot): closed AAPL 10"), "report")
        pending = [json.loads(p)["kind"] for _, p in await outbox.outbox_pending("telegram")]
        assert {"security", "report"} <= set(pending)
        api.heal()
        await bot.delivery.wait_idle()
    texts = [r.text for r in api.sent(OPERATOR)]
    assert any("Unauthorized access attempt" in t for t in texts)
    assert any("flat (bot): closed AAPL 10" in t for t in texts)
    assert bot.delivery.dropped_total == 10 - 3
    assert not await outbox.outbox_pending("telegram")
