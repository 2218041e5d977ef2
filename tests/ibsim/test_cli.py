"""The standalone simulator: subprocess, ib_async client, control channel, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys

import pytest
from ib_async import IB, MarketOrder, Stock

from ibsim import SimGateway
from ibsim.cli import MAX_SEED, MAX_SPEED, build_parser
from tests.tradebot_script import TRADEBOT, clean_env, digest, run_tradebot


async def _command(port: int, **command) -> dict:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(json.dumps(command).encode() + b"\n")
    reply = json.loads(await asyncio.wait_for(reader.readline(), 5))
    writer.close()
    return reply


async def test_cli_subprocess_with_control_channel(tmp_path) -> None:
    state = tmp_path / "state.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys, ibsim.cli; sys.exit(ibsim.cli.main(sys.argv[1:]))",
        "--port", "0", "--control-port", "0", "--seed", "3", "--speed", "0",
        "--start", "2024-03-04T15:00:00+00:00", "--state", str(state),
        "--symbols", "AAPL", "EURUSD",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line.startswith("ibsim ready"), line
        fields = dict(part.split("=") for part in line.split()[2:])
        port, control = int(fields["port"]), int(fields["control_port"])
        ib = IB()
        await ib.connectAsync("127.0.0.1", port, clientId=4, timeout=5, raiseSyncErrors=True)
        (aapl,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 2))
        await ib.reqCurrentTimeAsync()
        assert trade.orderStatus.status == "Filled"
        status = await _command(control, cmd="status")
        assert status["ok"] and status["result"]["clients"] == [4]
        assert status["result"]["executions"] == 1
        assert (await _command(control, cmd="advance", seconds=60))["ok"]
        assert (await ib.reqCurrentTimeAsync()).minute == 1
        bad = await _command(control, cmd="format_disk")
        assert not bad["ok"] and "unknown command" in bad["error"]
        disconnected = asyncio.Event()
        ib.disconnectedEvent += disconnected.set
        assert (await _command(control, cmd="drop_connections"))["ok"]
        await asyncio.wait_for(disconnected.wait(), 5)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        log = (await proc.stderr.read()).decode()
        assert (
            "client 4 connected" in log and "placeOrder" in log and "client 4 disconnected" in log
        )
        assert json.loads(state.read_text())["executions"]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# --- the documented commands, through the installed `tradebot` script ---------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _start_documented(*options: str) -> asyncio.subprocess.Process:
    # Settings that would stop `tradebot run` must not matter to the standalone gateway.
    env = clean_env(SIM_SPEED="inf", BAR_SIZE="nonsense")
    return await asyncio.create_subprocess_exec(
        str(TRADEBOT), "sim-gateway", *options,
        env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_documented_sim_gateway_command_serves_on_the_given_port(tmp_path) -> None:
    port = _free_port()
    state = tmp_path / "state.json"
    proc = await _start_documented(
        "--port", str(port), "--seed", "7", "--speed", "60", "--symbols", "AAPL", "MSFT",
        "--state", str(state), "--log-level", "info",
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line.startswith(f"ibsim ready port={port} "), line
        ib = IB()
        await ib.connectAsync("127.0.0.1", port, clientId=9, timeout=5, raiseSyncErrors=True)
        try:
            (msft,) = await ib.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"))
            assert msft.conId
            assert ib.managedAccounts() == ["DU1234567"]
        finally:
            ib.disconnect()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        assert state.exists()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_documented_sim_gateway_on_any_free_port_with_control_port() -> None:
    proc = await _start_documented("--port", "0", "--control-port", "0", "--speed", "0")
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        fields = dict(part.split("=") for part in line.split()[2:])
        status = await _command(int(fields["control_port"]), cmd="status")
        assert status["ok"] and status["result"]["port"] == int(fields["port"])
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_documented_sim_gateway_help(tmp_path) -> None:
    result = run_tradebot("sim-gateway", "--help", cwd=tmp_path, env=clean_env())
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("usage: tradebot sim-gateway")
    for option in ("--port", "--seed", "--speed", "--state", "--control-port", "--symbols"):
        assert option in result.stdout
    overview = run_tradebot("--help", cwd=tmp_path, env=clean_env())
    assert overview.code == 0 and "sim-gateway" in overview.stdout


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (("--speed", "inf"), "--speed"),
        (("--speed", "1e12"), "--speed"),
        (("--speed", "nan"), "--speed"),
        (("--speed", "-1"), "--speed"),
        (("--seed", "-1"), "--seed"),
        (("--seed", str(2**32)), "--seed"),
        (("--port", "70000"), "--port"),
        (("--cash", "inf"), "--cash"),
        (("--log-level", "loud"), "--log-level"),
        (("--start", "0001-01-01T00:00"), "--start"),  # an OverflowError traceback before
        (("--start", "yesterday"), "--start"),
        (("--data", "/nonexistent"), "--data"),  # silently synthetic prices before
    ],
)
def test_sim_gateway_refuses_values_it_cannot_run(tmp_path, options, named) -> None:
    result = run_tradebot("sim-gateway", "--port", "0", *options, cwd=tmp_path, env=clean_env())
    assert result.code == 2
    (error,) = [line for line in result.lines if "error:" in line]
    assert f"argument {named}" in error
    assert "Traceback" not in result.stderr


def test_sim_gateway_corrupt_state_file_one_line_untouched(tmp_path) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(b'{"format": 1, "clock": 17\x00\xff garbage')
    before = digest(state)
    result = run_tradebot("sim-gateway", "--port", "0", "--state", str(state), cwd=tmp_path,
                          env=clean_env(), timeout=10)  # fmt: skip
    assert result.code == 2, result.stderr
    assert result.lines == [
        f"tradebot sim-gateway: {state}: not a valid state file (corrupt JSON); "
        "move it away to start afresh"
    ]
    assert digest(state) == before


def test_sim_gateway_accepts_the_ends_of_each_range() -> None:
    args = build_parser().parse_args(
        ["--speed", str(MAX_SPEED), "--seed", str(MAX_SEED), "--port", "65535"]
    )
    assert (args.speed, args.seed, args.port) == (MAX_SPEED, MAX_SEED, 65535)
    args = build_parser().parse_args(["--speed", "0", "--seed", "0", "--port", "0"])
    assert (args.speed, args.seed, args.port) == (0, 0, 0)
    assert build_parser().parse_args(["--speed", "0.1"]).speed == 0.1


async def test_the_control_channel_listens_on_loopback_only() -> None:
    """It injects faults and moves the clock: --host 0.0.0.0 opens the API port, never it."""
    async with SimGateway(host="0.0.0.0", port=0, control_port=0, speed=0) as gateway:
        assert gateway._control is not None
        sockets = gateway._control._server.sockets
        assert {s.getsockname()[0] for s in sockets} == {"127.0.0.1"}
