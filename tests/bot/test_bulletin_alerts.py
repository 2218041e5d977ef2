"""IB's news bulletins as Telegram alerts: from ibsim through ib_async, the engine and the real
python-telegram-bot to the fake Bot API; ALERT_BULLETINS=off keeps them quiet."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from engine.domain import Bulletin, BulletinKind, EngineState
from engine.events import BulletinEvent, RiskEvent
from tests.bot.fake_control import FakeControl
from tests.bot.harness import OPERATOR, MemoryOutbox, running_front_end
from tests.engine.conftest import make_settings, next_event, running_engine, sim_gateway
from tests.fakebotapi import FakeBotAPI


async def test_a_bulletin_from_ibsim_reaches_the_phone(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, symbols="AAPL")
    async with (
        sim_gateway() as gateway,
        running_engine(gateway, settings) as (engine, control),
        FakeBotAPI() as api,
        running_front_end(
            api, control, engine.journal, {OPERATOR}, alert_levels=settings.alert_levels
        ),
    ):
        events = control.subscribe()
        gateway.bulletin("Trading halted in AAPL: news pending", "NASDAQ", 2)
        await next_event(events, BulletinEvent, timeout=5)
        alert = await api.wait_for("sendMessage", lambda r: "IB bulletin" in r.text, timeout=10)
        assert "exchange unavailable (NASDAQ)" in alert.text
        assert "Trading halted in AAPL: news pending" in alert.text
        assert alert.params.get("disable_notification") != "true"  # on by default


async def test_alert_bulletins_off_suppresses_them(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, alert_bulletins="off")
    assert settings.alert_levels["bulletins"] == "off"
    control, outbox = FakeControl(), MemoryOutbox()
    now = datetime.now(UTC)
    async with (
        FakeBotAPI() as api,
        running_front_end(
            api, control, outbox, {OPERATOR}, alert_levels=settings.alert_levels
        ) as bot,
    ):
        control.publish(BulletinEvent(Bulletin(1, BulletinKind.NEWS, "maintenance", ""), now))
        control.publish(RiskEvent("paused", "after the bulletin", now, state=EngineState.PAUSED))
        await api.wait_for("sendMessage", lambda r: "after the bulletin" in r.text)
        await bot.delivery.wait_idle()
    assert api.calls("sendMessage", lambda r: "IB bulletin" in r.text) == []
