"""`tradebot download`: IB's historical pacing kept (on a fake clock), the period chunked, and
bars from ibsim stored in the journal once, however often it is downloaded."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.download import chunk_seconds, download, parse_request, plan
from engine.history_pacing import HistoricalPacer
from engine.journal import Journal
from engine.journal_rows import MIGRATIONS, iso
from tests.engine.conftest import make_settings, sim_gateway
from tests.tradebot_script import clean_env, run_tradebot


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_pacer_spaces_requests_for_one_contract() -> None:
    clock = FakeClock()
    pacer = HistoricalPacer(clock, clock.sleep)
    for n in range(5):
        assert pacer.delay("AAPL", n) == 0
        pacer.sent("AAPL", n)
    assert pacer.delay("AAPL", 5) == pytest.approx(2.05)  # the sixth within 2 s: a violation
    assert pacer.delay("MSFT", 5) == 0  # another contract is not held back by AAPL's
    clock.now += 2.1
    assert pacer.delay("AAPL", 5) == 0


def test_pacer_holds_an_identical_request_15_seconds() -> None:
    clock = FakeClock()
    pacer = HistoricalPacer(clock, clock.sleep)
    pacer.sent("AAPL", ("AAPL", "1 D"))
    clock.now += 5
    assert pacer.delay("AAPL", ("AAPL", "1 D")) == pytest.approx(10.05)
    assert pacer.delay("AAPL", ("AAPL", "2 D")) == 0


async def test_pacer_keeps_every_rule_over_a_long_run() -> None:
    clock = FakeClock()
    pacer = HistoricalPacer(clock, clock.sleep)
    sent: list[tuple[float, str]] = []
    for n in range(150):
        contract = ("AAPL", "MSFT")[n % 2]
        await pacer.wait(contract, (contract, n % 7))  # identical requests come back
        sent.append((clock.now, contract))
    times = [at for at, _ in sent]
    for i, (at, contract) in enumerate(sent):
        assert sum(1 for t in times if at - 600 < t <= at) <= 60
        same = [t for t, c in sent[: i + 1] if c == contract and at - 2 < t]
        assert len(same) <= 5
    for i in range(7, len(sent)):  # the same request (n % 7, same contract) came 14 before
        if i >= 14:
            assert sent[i][0] - sent[i - 14][0] >= 15
    # 150 requests at 60 per 10 minutes: the last in the third window, not later.
    assert 1200 < times[-1] - times[0] < 1200 + 60


def test_pacer_without_the_window_rule() -> None:
    clock = FakeClock()
    pacer = HistoricalPacer(clock, clock.sleep, window_limit=None)
    for n in range(100):
        clock.now += 0.5
        assert pacer.delay(n, n) == 0
        pacer.sent(n, n)


@pytest.mark.parametrize(
    ("bar_size", "duration", "size", "normalised", "seconds"),
    [
        ("1 min", "30 D", "1 min", "30 D", 30 * 86400),
        ("5MINS", "2w", "5 mins", "2 W", 14 * 86400),
        ("1 hours", " 1 Y ", "1 hour", "1 Y", 365 * 86400),
        ("5 sec", "3600 S", "5 secs", "3600 S", 3600),
        ("1 day", "2 M", "1 day", "2 M", 60 * 86400),
    ],
)
def test_arguments_are_normalised(
    bar_size: str, duration: str, size: str, normalised: str, seconds: int
) -> None:
    request = parse_request("aapl", bar_size, duration)
    assert (request.symbol, request.bar_size, request.duration, request.seconds) == (
        "AAPL", size, normalised, seconds,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("bar_size", "duration", "message"),
    [
        ("7 mins", "1 D", "--bar-size: unknown bar size '7 mins' (one of: 1 secs, 5 secs"),
        ("fast", "1 D", "--bar-size: unknown bar size 'fast'"),
        ("1 min", "thirty days", "--duration: expected a whole number and a unit"),
        ("1 min", "0 D", "--duration: expected a whole number"),
        ("1 min", "30 X", "--duration: expected a whole number"),
        ("1 secs", "20 Y", "takes more than 10,000 requests"),
    ],
)
def test_bad_arguments(bar_size: str, duration: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_request("AAPL", bar_size, duration)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_period_is_chunked_newest_first() -> None:
    end = datetime(2026, 11, 20, 21, tzinfo=UTC)
    assert chunk_seconds("1 min") == 86400 and chunk_seconds("5 secs") == 3600
    chunks = plan(parse_request("AAPL", "1 min", "3 D"), end)
    assert chunks == [(end - timedelta(days=d), "86400 S") for d in range(3)]
    chunks = plan(parse_request("AAPL", "5 secs", "5000 S"), end)
    assert chunks == [(end, "3600 S"), (end - timedelta(seconds=3600), "1400 S")]
    assert plan(parse_request("AAPL", "1 day", "2 Y"), end) == [
        (end, "365 D"), (end - timedelta(days=365), "365 D"),
    ]  # fmt: skip


async def test_download_from_ibsim_twice_stores_each_bar_once(tmp_path: Path) -> None:
    async with sim_gateway() as gateway:
        settings = make_settings(tmp_path, ib_host="127.0.0.1", ib_port=gateway.port)
        request = parse_request("AAPL", "1 min", "2 D")
        first = await download(settings, request)
        second = await download(settings, request, client_id=7)
    assert first.requests == 2 and first.received > 300
    assert first.added > 300 and first.added <= first.received  # the two days overlap or not
    assert second.received >= first.added and second.added < second.received / 10
    journal = await Journal.open(settings.db_path)
    try:
        bars = await journal.bars("AAPL", "1 min")
        assert await journal.bar_sizes("AAPL") == ["1 min"]
    finally:
        await journal.close()
    assert len(bars) == first.added + second.added
    times = [bar.time for bar in bars]
    assert times == sorted(set(times))
    assert all(t.tzinfo is not None and t.second == 0 for t in times)
    with sqlite3.connect(settings.db_path) as db:
        stored = [row[0] for row in db.execute("SELECT time FROM bars ORDER BY time LIMIT 3")]
    assert stored == [iso(t) for t in times[:3]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--bar-size", "7 mins"), "tradebot: download: --bar-size: unknown bar size '7 mins'"),
        (("--duration", "30 days"), "tradebot: download: --duration: expected a whole number"),
    ],
)
def test_the_command_refuses_bad_arguments_in_one_line(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    env = clean_env(DB_PATH=str(tmp_path / "j.sqlite3"), LOG_DIR=str(tmp_path / "logs"))
    result = run_tradebot("download", "AAPL", *args, cwd=tmp_path, env=env)
    assert result.code == 2, result.stderr
    assert len(result.lines) == 1 and result.lines[0].startswith(message), result.lines
    assert not (tmp_path / "j.sqlite3").exists()


async def test_a_pacing_violation_backs_off_and_asks_again(tmp_path: Path) -> None:
    clock = FakeClock()
    lines: list[str] = []
    async with sim_gateway() as gateway:
        settings = make_settings(tmp_path, ib_host="127.0.0.1", ib_port=gateway.port)
        gateway.faults.pacing_violation_next()
        result = await download(
            settings, parse_request("AAPL", "1 min", "1 D"),
            pacer=HistoricalPacer(clock, clock.sleep), sleep=clock.sleep,
            progress=lines.append, pacing_backoff=60.0,
        )  # fmt: skip
    assert result.requests == 1 and result.added > 300
    assert lines[0] == "IB says pacing violation: waiting 60 s"
    # The same request again: after the back-off, and never within 15 s of the first.
    assert clock.now - 1000.0 >= 60


async def test_a_version_2_journal_gets_the_bars_table_after_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with sqlite3.connect(path) as db:  # a journal as the release before the bars table left it
        db.executescript(MIGRATIONS[0] + MIGRATIONS[1] + "\nPRAGMA user_version = 2;")
        db.execute("INSERT INTO state VALUES ('paused', '1')")
    db.close()
    journal = await Journal.open(path)
    try:
        assert await journal.schema_version() == 3
        assert await journal.get_state("paused") == "1"
        assert await journal.bars("AAPL") == []
    finally:
        await journal.close()
    backup = tmp_path / "journal.sqlite3.before-v3.sqlite3"
    with sqlite3.connect(backup) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert db.execute("SELECT value FROM state").fetchall() == [("1",)]
    db.close()
