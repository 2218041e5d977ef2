"""IB's news bulletins end to end: ibsim's control channel → ib_async → IBBroker → the engine's
BulletinEvent, journaled; the day's bulletins IB sends again after a reconnect are told once."""

from __future__ import annotations

from pathlib import Path

from engine.domain import BulletinKind, ConnectionState
from engine.events import BulletinEvent, ConnectionEvent
from ibsim.control import ControlServer

from .conftest import make_settings, next_event, running_engine, sim_gateway


async def test_a_bulletin_from_the_control_channel_becomes_one_event(tmp_path: Path) -> None:
    async with sim_gateway(control_port=0) as gateway:
        control_channel = ControlServer(gateway)
        settings = make_settings(tmp_path, symbols="AAPL")
        async with running_engine(gateway, settings) as (engine, control):
            events = control.subscribe()
            reply = await control_channel.execute(
                b'{"cmd": "bulletin", "message": "Trading halted in AAPL", "exchange": "NASDAQ",'
                b' "msg_type": 2}'
            )
            assert reply == {"ok": True, "result": 1}
            event = await next_event(events, BulletinEvent, timeout=5)
            assert event.bulletin.message == "Trading halted in AAPL"
            assert event.bulletin.exchange == "NASDAQ"
            assert event.bulletin.kind is BulletinKind.EXCHANGE_UNAVAILABLE

            # After a reconnect IB sends the day's bulletins again: the first is not told twice.
            gateway.drop_connections()
            await next_event(events, ConnectionEvent,
                             lambda e: e.state is ConnectionState.CONNECTED, timeout=10)
            gateway.bulletin("AAPL trading resumes", "NASDAQ", 3)
            again = await next_event(events, BulletinEvent, timeout=5)
            assert again.bulletin.message == "AAPL trading resumes"
            assert again.bulletin.kind is BulletinKind.EXCHANGE_AVAILABLE

            await engine.writer.flush()
            rows = await engine.journal.recent_events(50)
            told = [r for r in rows if r.kind == "bulletin"]
            assert len(told) == 2
