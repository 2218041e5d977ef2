"""Request handlers for the account: account updates, summaries, positions, PnL."""

from __future__ import annotations

from . import messages as msg
from . import requests as rq
from .account_fanout import (
    account_summary_messages,
    account_value_messages,
    account_value_rows,
    pnl_message,
    pnl_single_message,
    portfolio_messages,
    position_rows,
)
from .handler_registry import handles
from .session import ClientSession
from .state import ServerState

# --- account ---------------------------------------------------------------------------------


@handles(rq.ReqAccountUpdates)
def _account_updates(state: ServerState, s: ClientSession, req: rq.ReqAccountUpdates) -> None:
    if not req.subscribe:
        s.subs.account_updates = None
        return
    account = req.account or state.account_names[0]
    if account not in state.accounts:
        s.send_error(-1, 321, f"Error validating request: account {account} is not managed")
        return
    s.subs.account_updates = account
    out = account_value_messages(state, account)
    out += portfolio_messages(state, account)
    out.append(msg.update_account_time(state.clock.now()))
    out.append(msg.account_download_end(account))
    s.write_many(out)


@handles(rq.ReqAccountUpdatesMulti)
def _account_multi(state: ServerState, s: ClientSession, req: rq.ReqAccountUpdatesMulti) -> None:
    accounts = state.account_names if req.account in ("", "All") else [req.account]
    out = []
    for account in accounts:
        if account not in state.accounts:
            s.send_error(req.req_id, 321, f"Error validating request: unknown account {account}")
            return
        out += [
            msg.account_update_multi(req.req_id, account, req.model_code, key, value, cur)
            for key, value, cur in account_value_rows(state, account)
        ]
    out.append(msg.account_update_multi_end(req.req_id))
    s.subs.account_multi[req.req_id] = req.account
    s.write_many(out)


@handles(rq.CancelAccountUpdatesMulti)
def _cancel_account_multi(
    state: ServerState, s: ClientSession, req: rq.CancelAccountUpdatesMulti
) -> None:
    s.subs.account_multi.pop(req.req_id, None)


@handles(rq.ReqAccountSummary)
def _account_summary(state: ServerState, s: ClientSession, req: rq.ReqAccountSummary) -> None:
    s.subs.account_summary[req.req_id] = req.tags
    out = account_summary_messages(state, req.req_id, req.tags)
    out.append(msg.account_summary_end(req.req_id))
    s.write_many(out)


@handles(rq.CancelAccountSummary)
def _cancel_account_summary(
    state: ServerState, s: ClientSession, req: rq.CancelAccountSummary
) -> None:
    s.subs.account_summary.pop(req.req_id, None)


@handles(rq.ReqPositions)
def _positions(state: ServerState, s: ClientSession, req: rq.ReqPositions) -> None:
    s.subs.positions = True
    out = [
        msg.position(account, spec, pos.quantity, pos.avg_cost)
        for account, spec, pos in position_rows(state)
    ]
    out.append(msg.position_end())
    s.write_many(out)


@handles(rq.CancelPositions)
def _cancel_positions(state: ServerState, s: ClientSession, req: rq.CancelPositions) -> None:
    s.subs.positions = False


@handles(rq.ReqPositionsMulti)
def _positions_multi(state: ServerState, s: ClientSession, req: rq.ReqPositionsMulti) -> None:
    out = [
        msg.position_multi(req.req_id, account, spec, pos.quantity, pos.avg_cost, req.model_code)
        for account, spec, pos in position_rows(state)
        if req.account in ("", "All", account)
    ]
    out.append(msg.position_multi_end(req.req_id))
    s.write_many(out)


@handles(rq.CancelPositionsMulti)
def _cancel_positions_multi(
    state: ServerState, s: ClientSession, req: rq.CancelPositionsMulti
) -> None:
    """Position-multi replies are one-shot here."""


@handles(rq.ReqPnL)
def _pnl(state: ServerState, s: ClientSession, req: rq.ReqPnL) -> None:
    s.subs.pnl[req.req_id] = req.account
    s.write(pnl_message(state, req.req_id, req.account))


@handles(rq.CancelPnL)
def _cancel_pnl(state: ServerState, s: ClientSession, req: rq.CancelPnL) -> None:
    s.subs.pnl.pop(req.req_id, None)


@handles(rq.ReqPnLSingle)
def _pnl_single(state: ServerState, s: ClientSession, req: rq.ReqPnLSingle) -> None:
    s.subs.pnl_single[req.req_id] = (req.account, req.con_id)
    s.write(pnl_single_message(state, req.req_id, req.account, req.con_id))


@handles(rq.CancelPnLSingle)
def _cancel_pnl_single(state: ServerState, s: ClientSession, req: rq.CancelPnLSingle) -> None:
    s.subs.pnl_single.pop(req.req_id, None)
