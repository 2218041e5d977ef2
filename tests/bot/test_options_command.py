"""/chain and an option's /quote end to end: real python-telegram-bot ↔ fake Bot API ↔
TelegramFrontEnd ↔ the real engine ↔ ib_async ↔ ibsim's option chains, quotes and greeks;
an expiry that does not exist; bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.bot.engine_rig import engine_rig, reply_to


def _plain(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text)


def _expiries(text: str) -> list[str]:
    found = re.search(r"expiries: ([0-9, ]+)", text)
    assert found, text
    return found.group(1).split(", ")


def _strikes(text: str) -> list[float]:
    found = re.search(r"strikes near the money: ([0-9., ]+)", text)
    assert found, text
    return [float(k) for k in found.group(1).split(", ")]


async def test_chain_then_an_expiry_then_a_quote_with_greeks(tmp_path: Path) -> None:
    async with engine_rig(tmp_path) as api:
        reply = await reply_to(api, "/chain aapl", "Options AAPL")
        text = reply.text
        expiries = _expiries(text)
        assert 1 <= len(expiries) <= 8 and expiries == sorted(expiries)
        assert re.search(r"AAPL last \d+\.\d\d · ×100 a contract · SMART", text), text
        strikes = _strikes(text)
        assert len(strikes) == 10 and strikes == sorted(strikes)
        last = re.search(r"AAPL last (\d+\.\d\d)", text)
        assert last and strikes[0] <= float(last.group(1)) <= strikes[-1]

        expiry = expiries[-1]  # the furthest: every strike quoted on both sides
        dated = await reply_to(api, f"/chain AAPL {expiry}", f"Options AAPL {expiry}")
        rows = [line.split() for line in _plain(dated.text).splitlines()
                if re.match(r"^\d+(\.\d+)? +\d", line)]
        assert len(rows) == 10, dated.text
        for _strike, c_bid, c_ask, p_bid, p_ask in rows:
            assert 0 < float(c_bid) < float(c_ask) and 0 < float(p_bid) < float(p_ask)
        # deeper in the money, dearer: calls fall with the strike, puts rise
        assert float(rows[0][1]) > float(rows[-1][1])
        assert float(rows[0][3]) < float(rows[-1][3])

        strike = rows[4][0]
        quote = await reply_to(api, f"/quote AAPL {expiry} {strike} C",
                               f"AAPL {expiry} {strike}C: ")
        body = quote.text
        assert re.search(r"bid \d+\.\d\d  ask \d+\.\d\d  last \d+\.\d\d", body), body
        delta = re.search(r"IV (\d+\.\d)%  delta (0\.\d{3})  gamma (0\.\d{4})", body)
        assert delta and 0 < float(delta.group(2)) < 1 and float(delta.group(3)) > 0, body
        assert re.search(r"theta -\d+\.\d{3}  vega \d+\.\d{3}", body), body
        assert re.search(r"underlying \d+\.\d\d · ×100 a contract", body), body
        put = await reply_to(api, f"/quote AAPL {expiry} {strike}P", f"AAPL {expiry} {strike}P: ")
        assert re.search(r"delta -0\.\d{3}", put.text), put.text


async def test_an_expiry_that_does_not_exist_lists_the_nearest(tmp_path: Path) -> None:
    async with engine_rig(tmp_path) as api:
        reply = await reply_to(api, "/chain AAPL 20991231", "No AAPL options expire on 20991231")
        nearest = re.search(r"the nearest are ([0-9, ]+)", reply.text)
        assert nearest and len(nearest.group(1).split(", ")) == 3, reply.text
        listed = _expiries((await reply_to(api, "/chain AAPL", "Options AAPL")).text)
        assert nearest.group(1).split(", ") == listed[-3:]  # the latest are nearest 2099
        unknown = await reply_to(api, f"/quote AAPL {listed[0]} 191.3 C", "Unknown option")
        assert f"AAPL {listed[0]} 191.3C" in unknown.text and "/chain AAPL" in unknown.text


@pytest.mark.parametrize(
    ("command", "needle"),
    [
        ("/chain", "/chain takes a symbol"),
        ("/chain AAPL 20261218 C", "/chain takes a symbol"),
        ("/chain NOPE", "Unknown symbol NOPE: IB lists no options on it"),
        ("/chain AAPL 2026-12", "the expiry &#x27;2026-12&#x27; is not a date as YYYYMMDD"),
        ("/quote AAPL 20261318 200 C", "the expiry &#x27;20261318&#x27; is not a date"),
        ("/quote AAPL 20261218 -5 C", "the strike &#x27;-5&#x27; is not a positive number"),
        ("/quote AAPL 20261218 200 X", "the right &#x27;X&#x27; is not C (call) or P (put)"),
        ("/quote AAPL 20261218", "/quote takes one symbol or an option"),
    ],
)
async def test_bad_input_gets_a_short_answer_naming_it(
    tmp_path: Path, command: str, needle: str
) -> None:
    async with engine_rig(tmp_path) as api:
        await reply_to(api, command, needle)
