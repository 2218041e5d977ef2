"""Account news for the clients: account values, portfolio, positions and PnL as wire messages
(the answers to account requests), and the pushes IB streams to subscribers after fills and
periodically — positions and PnL at once, account values throttled."""

from __future__ import annotations

import asyncio
import time

from . import messages as msg
from .account import Position
from .contracts import ContractSpec
from .state import ServerState

_PUSH_DELAY = 0.02  # wall seconds: coalesce account/portfolio pushes after fills


# --- answers -----------------------------------------------------------------------------------


def mark(state: ServerState, spec: ContractSpec) -> float:
    """Mark price: the last trade, or the last session's close while the market is shut."""
    now = state.clock.now()
    if not state.market.is_open(spec, now):
        sess = state.market.last_session(spec, now)
        now = sess.end - 5
    return state.market.price_ticks(spec, now) * spec.min_tick


def account_value_rows(state: ServerState, account: str) -> list[tuple[str, str, str]]:
    """(tag, value, currency) of every account value IB reports."""
    values = state.accounts[account].values(state.universe.get, lambda s: mark(state, s))
    rows = [("AccountCode", account, ""), ("AccountType", "INDIVIDUAL", ""),
            ("Currency", "USD", "USD")]  # fmt: skip
    rows += [(tag, f"{value:.2f}", "USD") for tag, value in values.tags()]
    rows += [("CashBalance", f"{values.cash:.2f}", "BASE"),
             ("NetLiquidationByCurrency", f"{values.net_liquidation:.2f}", "BASE")]  # fmt: skip
    return rows


def account_value_messages(state: ServerState, account: str) -> list[list[str]]:
    return [
        msg.update_account_value(key, value, cur, account)
        for key, value, cur in account_value_rows(state, account)
    ]


def portfolio_messages(
    state: ServerState, account: str, con_ids: set[int] | None = None
) -> list[list[str]]:
    """updatePortfolio for the account's positions (all non-zero ones, or those in ``con_ids``
    even when closed)."""
    out = []
    for pos in state.accounts[account].positions.values():
        spec = state.universe.get(pos.con_id)
        if spec is None or (con_ids is not None and pos.con_id not in con_ids):
            continue
        if not pos.quantity and con_ids is None:
            continue
        price = mark(state, spec)
        value = pos.quantity * price * spec.multiplier_value
        out.append(
            msg.update_portfolio(
                spec,
                pos.quantity,
                round(price, spec.price_digits + 1),
                value,
                pos.avg_cost,
                value - pos.quantity * pos.avg_cost,
                pos.realized_pnl,
                account,
            )
        )
    return out


# What $LEDGER brings besides the tags asked by name (IB's ledger has more: these are the ones
# ibsim keeps).
_LEDGER_TAGS = ("CashBalance", "NetLiquidationByCurrency", "RealizedPnL", "UnrealizedPnL")


def account_summary_messages(state: ServerState, req_id: int, tags: str) -> list[list[str]]:
    wanted = {t.strip() for t in tags.split(",") if t.strip()}
    ledger = any(t.startswith("$LEDGER") for t in wanted)
    out = []
    for account in state.account_names:
        for key, value, cur in account_value_rows(state, account):
            if key in wanted or (ledger and key in _LEDGER_TAGS):
                out.append(msg.account_summary(req_id, account, key, value, cur))
    return out


def position_rows(state: ServerState) -> list[tuple[str, ContractSpec, Position]]:
    """Every non-zero position of every account."""
    rows = []
    for account in state.account_names:
        for pos in state.accounts[account].positions.values():
            spec = state.universe.get(pos.con_id)
            if spec is not None and pos.quantity:
                rows.append((account, spec, pos))
    return rows


def pnl_message(state: ServerState, req_id: int, account: str) -> list[str]:
    acct = state.accounts.get(account) or state.accounts[state.account_names[0]]
    values = acct.values(state.universe.get, lambda s: mark(state, s))
    return msg.pnl(req_id, values.unrealized_pnl + values.realized_pnl, values.unrealized_pnl,
                   values.realized_pnl)  # fmt: skip


def pnl_single_message(state: ServerState, req_id: int, account: str, con_id: int) -> list[str]:
    acct = state.accounts.get(account) or state.accounts[state.account_names[0]]
    pos = acct.positions.get(con_id)
    spec = state.universe.get(con_id)
    if pos is None or spec is None:
        return msg.pnl_single(req_id, 0, 0, 0, 0, 0)
    value = pos.quantity * mark(state, spec) * spec.multiplier_value
    unrealized = value - pos.quantity * pos.avg_cost
    return msg.pnl_single(req_id, pos.quantity, unrealized + pos.realized_pnl, unrealized,
                          pos.realized_pnl, value)  # fmt: skip


# --- pushes ------------------------------------------------------------------------------------


class AccountFanout:
    """What IB streams after account changes: portfolio, positions and PnL for the changed
    positions at once; the account values at most every ``value_throttle`` wall seconds (IB
    itself refreshes them only every few minutes); everything every ``update_interval``
    simulated seconds."""

    def __init__(self, state: ServerState, update_interval: float, value_throttle: float) -> None:
        self.state = state
        self.update_interval = update_interval
        self.value_throttle = value_throttle
        self._last_values_push = float("-inf")
        self._dirty_accounts: set[str] = set()
        self._dirty_positions: set[tuple[str, int]] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._last_periodic = (state.clock.now(), time.monotonic())

    def position_changed(self, account: str, con_id: int) -> None:
        """A fill changed a position: push it soon."""
        self._dirty_accounts.add(account)
        self._dirty_positions.add((account, con_id))
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(_PUSH_DELAY, self._push)

    def flush(self) -> None:
        """Send a push that is owed now, so it reaches a client before any later answer (a
        client's round trip, e.g. reqCurrentTime, then also waits for it)."""
        if self._handle is not None:
            self._handle.cancel()
            self._push()

    def step_done(self, t: float) -> None:
        """The market driver finished the step ending at ``t``: the periodic refresh."""
        last_sim, last_wall = self._last_periodic
        if t - last_sim >= self.update_interval and time.monotonic() - last_wall >= 1.0:
            self._last_periodic = (t, time.monotonic())
            self._push(periodic=True)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()

    def _push(self, periodic: bool = False) -> None:
        self._handle = None
        state = self.state
        wall = time.monotonic()
        values_due = periodic or (
            bool(self._dirty_accounts) and wall - self._last_values_push >= self.value_throttle
        )
        accounts: set[str] = set()
        if values_due:
            accounts = set(state.account_names) if periodic else set(self._dirty_accounts)
            self._dirty_accounts.clear()
            self._last_values_push = wall
        positions = self._dirty_positions
        self._dirty_positions = set()
        now = state.clock.now()
        for s in state.clients.sessions():
            out: list[list[str]] = []
            acct = s.subs.account_updates
            if acct is not None:
                if acct in accounts:
                    out += account_value_messages(state, acct)
                changed = {c for a, c in positions if a == acct}
                if periodic or changed:
                    out += portfolio_messages(state, acct, None if periodic else changed)
                if out:
                    out.append(msg.update_account_time(now))
            if accounts:  # IB sends a summary's changed values again; ibsim sends them all
                for req_id, tags in s.subs.account_summary.items():
                    out += account_summary_messages(state, req_id, tags)
            for req_id, name in s.subs.account_multi.items():
                for account in state.account_names if name in ("", "All") else [name]:
                    if account in accounts:
                        out += [
                            msg.account_update_multi(req_id, account, "", k, v, c)
                            for k, v, c in account_value_rows(state, account)
                        ]
            if s.subs.positions:
                for account, con_id in sorted(positions):
                    spec = state.universe.get(con_id)
                    pos = state.accounts[account].positions.get(con_id)
                    if spec is not None and pos is not None:
                        out.append(msg.position(account, spec, pos.quantity, pos.avg_cost))
            if positions or periodic:
                for req_id, account in s.subs.pnl.items():
                    out.append(pnl_message(state, req_id, account))
                for req_id, (account, con_id) in s.subs.pnl_single.items():
                    out.append(pnl_single_message(state, req_id, account, con_id))
            s.write_many(out)
        if self._dirty_accounts:
            delay = self.value_throttle - (wall - self._last_values_push)
            self._handle = asyncio.get_running_loop().call_later(
                max(delay, _PUSH_DELAY), self._push
            )
