"""State file: the simulated server side (accounts, orders, executions, ids, clock) as JSON,
written atomically (fsync'd, then renamed over the old file) so a crash never leaves a
half-written file. Order changes and fills are saved before the clients hear of them (the
order fan-out holds its messages for `StateSaver.save`); other changes shortly after. The
clock's high-water mark is kept a little ahead of the clock, so a restart after a crash never
resumes before a time the clients were already sent."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .account import Account, Position
from .conditions import from_json, to_json
from .contracts import ContractSpec
from .options import from_occ
from .orders import Execution, SimOrder

if TYPE_CHECKING:
    from .broker import Broker
    from .clock import SimClock

log = logging.getLogger("ibsim")
FORMAT_VERSION = 1
_SAVE_DELAY = 0.25  # wall seconds: coalesce state-file writes
# Wall seconds between renewals of the clock's high-water mark, and how far ahead of the clock
# (in wall seconds of a running clock) each renewal puts it: twice the period, so a renewal
# that runs late still finds the clock below the mark.
_CLOCK_RENEWAL = 1.0
_CLOCK_LEASE = 2 * _CLOCK_RENEWAL


class StateFileError(ValueError):
    """The state file cannot be read back; the message names the file and what is wrong.
    The file is left as it is: it may be the only record of the simulated account."""


def snapshot(
    clock_time: float,
    accounts: dict[str, Account],
    broker: Broker,
    clock_mark: float | None = None,
) -> dict[str, Any]:
    """The state as JSON-ready data. ``clock_mark`` (at least ``clock_time``) is a time the
    clock is known not to have passed while this state is current: a restart resumes there."""
    return {
        "format": FORMAT_VERSION,
        "clock": clock_time,
        "clock_mark": max(clock_time, clock_mark if clock_mark is not None else clock_time),
        "accounts": [
            {
                "name": a.name,
                "cash": a.cash,
                "realized_pnl": a.realized_pnl,
                "positions": [dataclasses.asdict(p) for p in a.positions.values()],
            }
            for a in accounts.values()
        ],
        # Orders sent with transmit=False never reached IB's servers, so they are not kept.
        "orders": [_order_json(o) for o in broker.orders.values() if not o.staged],
        "executions": [dataclasses.asdict(e) for e in broker.executions],
        "next_perm_id": broker.next_perm_id,
        "next_exec_seq": broker.next_exec_seq,
        "next_order_ids": {str(k): v for k, v in broker.next_order_ids.items()},
        # Options are listed day by day: the ones held or traded are kept to be listed again.
        "options": [
            {"con_id": s.con_id, "under_con_id": s.under_con_id, "local_symbol": s.local_symbol}
            for s in _options_used(accounts, broker)
        ],
    }


def _options_used(accounts: dict[str, Account], broker: Broker) -> list[ContractSpec]:
    con_ids = {c for a in accounts.values() for c in a.positions}
    con_ids |= {o.con_id for o in broker.orders.values()}
    con_ids |= {e.con_id for e in broker.executions}
    specs = (broker.universe.get(c) for c in sorted(con_ids))
    return [s for s in specs if s is not None and s.sec_type == "OPT"]


def _order_json(order: SimOrder) -> dict[str, Any]:
    # asdict() would drop each condition's type; to_json keeps it.
    return {**dataclasses.asdict(order), "conditions": [to_json(c) for c in order.conditions]}


def restore(
    state: dict[str, Any], accounts: dict[str, Account], broker: Broker, path: Path | None = None
) -> None:
    try:
        _restore(state, accounts, broker)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # A file that parses but does not hold what snapshot() writes (edited by hand, say).
        raise StateFileError(
            f"{path or 'state file'}: not a state this simulator wrote ({type(exc).__name__}: "
            f"{exc}); move it away to start afresh"
        ) from None


def _restore(state: dict[str, Any], accounts: dict[str, Account], broker: Broker) -> None:
    for item in state.get("options", []):
        under = broker.universe.get(item["under_con_id"])
        if under is None or item["con_id"] in broker.universe.by_con_id:
            continue
        option = from_occ(under, item["local_symbol"], item["con_id"], state["clock"])
        broker.universe.add_options(under.con_id, [option])
    known = set(broker.universe.by_con_id)
    for item in state.get("accounts", []):
        account = accounts.get(item["name"])
        if account is None:
            log.warning("state file: account %s is not configured; ignored", item["name"])
            continue
        account.cash = item["cash"]
        account.realized_pnl = item["realized_pnl"]
        account.positions = {
            p["con_id"]: Position(**p) for p in item["positions"] if p["con_id"] in known
        }
    for item in state.get("orders", []):
        if item["con_id"] in known and item["account"] in accounts:
            conditions = tuple(from_json(c) for c in item.get("conditions", ()))
            order = SimOrder(**{**item, "conditions": conditions})
            broker.orders[order.perm_id] = order
    broker.executions = [Execution(**e) for e in state.get("executions", [])]
    broker.next_perm_id = state.get("next_perm_id", broker.next_perm_id)
    broker.next_exec_seq = state.get("next_exec_seq", broker.next_exec_seq)
    broker.next_order_ids = {int(k): v for k, v in state.get("next_order_ids", {}).items()}
    broker.restore_working()


def load(path: Path) -> dict[str, Any] | None:
    """The saved state, None when there is no file yet; StateFileError when it is unusable."""
    try:
        with path.open("rb") as f:
            state = json.load(f)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(f"{path}: cannot read the state file ({exc.strerror})") from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        raise StateFileError(
            f"{path}: not a valid state file (corrupt JSON); move it away to start afresh"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        found = state.get("format") if isinstance(state, dict) else None
        raise StateFileError(
            f"{path}: unsupported state file format {found!r} (expected {FORMAT_VERSION})"
        )
    if not _is_time(state.get("clock")) or not _is_time(state.get("clock_mark", 0.0)):
        raise StateFileError(f"{path}: the state file has no valid clock; move it away")
    return state


def _is_time(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def resume_time(state: dict[str, Any]) -> float:
    """Where a restarted clock starts: never before a time the clients may have been sent."""
    return max(state["clock"], state.get("clock_mark", state["clock"]))


def save(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(state, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class StateSaver:
    """Writes the state file: now (`save`), shortly after changes (`mark_dirty`: many
    changes, one write), and every `_CLOCK_RENEWAL` wall seconds while the clock runs, to keep
    the clock's high-water mark ahead of the clock (at once when the clock jumps)."""

    def __init__(
        self, path: Path | None, clock: SimClock, accounts: dict[str, Account], broker: Broker
    ) -> None:
        self.path = path
        self._clock = clock
        self._accounts = accounts
        self._broker = broker
        self._handle: asyncio.TimerHandle | None = None
        self._renewal: asyncio.TimerHandle | None = None
        self.clock_mark = clock.now()  # the clock is not past it while the saved state is current
        self._leasing = False

    def start(self) -> None:
        """Keep the clock's high-water mark ahead of the clock (before anything is sent: the
        market driver and the clients' requests read the clock only after this)."""
        if self.path is None or self._leasing:
            return
        self._leasing = True
        self._clock.on_change(self._renew)
        self._renew()

    def close(self) -> None:
        """The final write: the clock stops here, so the mark is the clock itself."""
        self._leasing = False
        for handle in (self._handle, self._renewal):
            if handle is not None:
                handle.cancel()
        self._handle = self._renewal = None
        if self.path is not None:
            now = self._clock.now()
            self.clock_mark = now
            save(self.path, snapshot(now, self._accounts, self._broker, now))

    def mark_dirty(self) -> None:
        if self.path is None or self._handle is not None:
            return
        self._handle = asyncio.get_running_loop().call_later(_SAVE_DELAY, self.save)

    def save(self) -> None:
        """Write the file now (a write that was pending is done by this one)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self.path is None:
            return
        now = self._clock.now()
        if self._leasing:
            self.clock_mark = max(self.clock_mark, now + self._clock.speed * _CLOCK_LEASE)
        save(self.path, snapshot(now, self._accounts, self._broker, self.clock_mark))

    def _renew(self) -> None:
        """Save with the mark moved ahead; again in `_CLOCK_RENEWAL` while the clock runs."""
        if self._renewal is not None:
            self._renewal.cancel()
            self._renewal = None
        if not self._leasing:
            return
        try:
            self.save()
        except OSError as exc:
            log.error("state file %s: cannot save (%s)", self.path, exc)
        if self._clock.speed > 0:
            self._renewal = asyncio.get_running_loop().call_later(_CLOCK_RENEWAL, self._renew)
