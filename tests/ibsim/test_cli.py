"""The standalone simulator: subprocess, ib_async client, control channel, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from ib_async import IB, MarketOrder, Stock


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
