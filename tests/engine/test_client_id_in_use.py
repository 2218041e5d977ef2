"""Error 326 at connect (issue 8, item 2): alerted once, retried for a while (IB may still hold
the previous session after a restart), then the bot stops and `tradebot run` exits 2 naming
IB_CLIENT_ID. Before: a second instance retried forever, alerting on every attempt."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ib_async import IB

from bot.runner import serve
from engine import ib_connect
from engine.broker import IBBroker
from engine.engine import Engine
from engine.errors import ConfigurationError
from engine.events import BrokerErrorEvent
from engine.journal import Journal
from tests.engine.conftest import SPEED, make_settings, running_engine


async def test_client_id_in_use_is_alerted_once_then_fatal(
    gateway, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(ib_connect, "CLIENT_ID_IN_USE_SECONDS", 1.0)
    first_settings = make_settings(tmp_path / "first", strategy_params="fast=50,slow=60")
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    second_settings = make_settings(tmp_path / "second", strategy_params="fast=50,slow=60")
    async with running_engine(gateway, first_settings) as (first, _):
        journal = await Journal.open(second_settings.db_path)
        broker = IBBroker.from_settings(second_settings, host="127.0.0.1", port=gateway.port,
                                        backoff_initial=0.05)
        second = Engine(second_settings, journal, broker, mode="sim", clock_speed=SPEED)
        alerts = second.bus.subscribe(kinds=(BrokerErrorEvent,))
        try:
            await second.start()
            await asyncio.wait_for(second.wait_stopped(), 10)
            assert isinstance(second.fatal, ConfigurationError)
            assert str(second.fatal).startswith("IB_CLIENT_ID: client id 1 is in use")
            refused = [alerts.get_nowait() for _ in range(alerts.pending())]
            assert [e.code for e in refused] == [326], "alerted once, not on every retry"
            assert first.broker.is_connected  # the first instance is undisturbed
        finally:
            await second.stop()
            await journal.close()


async def test_tradebot_run_exits_2_naming_ib_client_id(
    gateway, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setattr(ib_connect, "CLIENT_ID_IN_USE_SECONDS", 1.0)
    holder = IB()  # another program holds client id 5 at the gateway
    await holder.connectAsync("127.0.0.1", gateway.port, clientId=5, timeout=5)
    try:
        settings = make_settings(tmp_path, ib_host="127.0.0.1", ib_port=gateway.port,
                                 ib_client_id=5)
        code = await asyncio.wait_for(serve(settings), 20)
    finally:
        holder.disconnect()
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("tradebot: IB_CLIENT_ID: client id 5 is in use"), err
    assert not any("Traceback" in line for line in err)
