"""/account end to end: real python-telegram-bot ↔ fake Bot API ↔ TelegramFrontEnd ↔ the real
engine ↔ ib_async's account summary ↔ ibsim's account, before and after a fill; an argument; the
gateway away; a stranger."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from engine.control import Control
from engine.domain import ConnectionState, OrderStatus, Side
from engine.events import ConnectionEvent
from ibsim import requests as rq
from ibsim.account_fanout import account_value_rows
from ibsim.gateway import SimGateway
from ibsim.handlers import HANDLERS
from tests.bot.engine_rig import engine_rig, engine_rig_parts, reply_to
from tests.bot.harness import OPERATOR, STRANGER
from tests.engine.conftest import next_event
from tests.fakebotapi import FakeBotAPI


def _gateway_values(gw: SimGateway) -> dict[str, float]:
    """ibsim's own account values (USD), as it would send them now."""
    rows = account_value_rows(gw.state, gw.account_names[0])
    return {tag: float(v) for tag, v, currency in rows if currency == "USD" and tag != "Currency"}


def _amount(text: str, label: str) -> float:
    match = re.search(rf"{label}: ([+-]?[\d,]+\.\d\d)", text)
    assert match, f"{label} not in {text!r}"
    return float(match.group(1).replace(",", ""))


def _percent(text: str, label: str) -> float:
    match = re.search(rf"{label}: [\d,]+\.\d\d \(([\d.]+)% of net liquidation\)", text)
    assert match, f"{label}'s percent not in {text!r}"
    return float(match.group(1))


async def _account_showing_cash(api: FakeBotAPI, cash: float) -> str:
    """/account until it shows `cash`: IB's summary catches up with a fill when its values
    are sent again (ibsim: right after the fill's account update, or at its periodic refresh;
    a loaded machine has been seen to take over 10 s)."""
    for _ in range(100):
        reply = await reply_to(api, "/account", "Account")
        if abs(_amount(reply.text, "cash") - cash) < 0.01:
            return reply.text
        await asyncio.sleep(0.25)
    raise AssertionError(f"/account never showed cash {cash:,.2f}: {reply.text!r}")


async def test_account_after_a_fill_matches_the_gateways_account(tmp_path: Path) -> None:
    # A slow strategy, paused: the only trade is the test's, so ibsim's numbers stay put.
    slow = {"strategy_params": "fast=50,slow=60"}
    async with engine_rig_parts(tmp_path, slow) as (api, gw, engine):
        await Control(engine).pause("test", "only the test trades")
        before = await _account_showing_cash(api, _gateway_values(gw)["TotalCashValue"])
        order = await engine.orders.submit("AAPL", Side.BUY, 10, "a position for /account")
        assert await engine.orders.wait_done([order.order_ref], 10)
        assert order.status is OrderStatus.FILLED
        text = await _account_showing_cash(api, _gateway_values(gw)["TotalCashValue"])
        ib = _gateway_values(gw)  # the market moves on: prices are compared loosely

        net_liq = _amount(text, "net liquidation")
        assert abs(net_liq - ib["NetLiquidation"]) < 0.001 * ib["NetLiquidation"]
        assert _amount(text, "cash") < _amount(before, "cash")  # 10 shares and a commission
        for label, tag in [
            ("buying power", "BuyingPower"),
            ("initial margin", "InitMarginReq"),
            ("maintenance margin", "MaintMarginReq"),
            ("available funds", "AvailableFunds"),
            ("excess liquidity", "ExcessLiquidity"),
            ("gross position value", "GrossPositionValue"),
        ]:
            assert abs(_amount(text, label) - ib[tag]) <= 0.05 * abs(ib[tag]) + 1, label
        initial = _amount(text, "initial margin")
        assert initial > 0
        assert abs(_percent(text, "initial margin") - initial / net_liq * 100) < 0.006
        maintenance = _amount(text, "maintenance margin")
        assert abs(_percent(text, "maintenance margin") - maintenance / net_liq * 100) < 0.006
        assert re.search(r"realized [+-][\d,]+\.\d\d, unrealized [+-][\d,]+\.\d\d", text)
        assert f"Account {engine.account} (USD)" in text


async def test_an_argument_gets_a_short_answer(tmp_path: Path) -> None:
    async with engine_rig(tmp_path) as api:
        reply = await reply_to(api, "/account everything", "/account takes no arguments")
        assert "net liquidation" not in reply.text


async def test_without_the_gateway_a_short_answer(tmp_path: Path) -> None:
    async with engine_rig_parts(tmp_path) as (api, gw, engine):
        events = Control(engine).subscribe()
        gw.stop_listening()
        gw.drop_connections()
        await next_event(
            events, ConnectionEvent, lambda e: e.state is ConnectionState.DISCONNECTED, 10
        )
        reply = await reply_to(api, "/account", "not connected")
        assert "No account summary now: not connected to the gateway" in reply.text


async def test_a_stranger_gets_no_account(tmp_path: Path) -> None:
    async with engine_rig(tmp_path) as api:
        api.inject_command("/account", chat_id=STRANGER)
        refusal = await api.wait_for("sendMessage", lambda r: r.int("chat_id") == STRANGER)
        assert refusal.text == "not authorized"
        await api.wait_for(
            "sendMessage",
            lambda r: r.int("chat_id") == OPERATOR and "Unauthorized access attempt" in r.text,
        )
        await reply_to(api, "/status", "Status")  # the stranger's command was handled before
        to_stranger = api.calls("sendMessage", lambda r: r.int("chat_id") == STRANGER)
        assert [r.text for r in to_stranger] == ["not authorized"]
        assert not api.calls("sendMessage", lambda r: "net liquidation" in r.text)


async def test_an_unanswered_summary_is_not_asked_again_until_a_reconnect(
    tmp_path: Path, monkeypatch
) -> None:
    """IB allows two account summary subscriptions (error 322 past them), and one that timed
    out stays open: /account asks once per connection, and says IB has not answered."""
    asked: list[int] = []
    monkeypatch.setitem(HANDLERS, rq.ReqAccountSummary,
                        lambda state, session, req: asked.append(req.req_id))
    async with engine_rig_parts(tmp_path) as (api, _, engine):
        engine.broker.research._timeout = 0.5
        for _ in range(3):
            reply = await reply_to(api, "/account", "No account summary")
            assert "IB has not answered; try again in a minute" in reply.text
        assert len(asked) == 1
