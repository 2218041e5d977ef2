"""Request handlers for options: the chains (reqSecDefOptParams). Option contracts, quotes
with Greeks and orders go through the ordinary handlers; the universe lists the chains."""

from __future__ import annotations

from . import messages as msg
from . import requests as rq
from .broker import NO_SECURITY
from .handler_registry import handles
from .session import ClientSession
from .state import ServerState


@handles(rq.ReqSecDefOptParams)
def _sec_def_opt_params(state: ServerState, s: ClientSession, req: rq.ReqSecDefOptParams) -> None:
    """One chain per underlying, on SMART, with every expiry and strike still listed."""
    under = state.universe.get(req.underlying_con_id) if req.underlying_con_id else None
    if under is None:
        under = state.universe.by_symbol(req.underlying_symbol.upper())
    if under is None or (req.underlying_sec_type and req.underlying_sec_type != under.sec_type):
        s.send_error(req.req_id, 200, NO_SECURITY)
        return
    now = state.clock.now()
    listed = [o for o in state.universe.option_chain(under.con_id) if not o.expired(now)]
    out = []
    if listed and not req.fut_fop_exchange:
        expirations = sorted({o.last_trade_date for o in listed})
        strikes = sorted({o.strike for o in listed})
        out.append(msg.sec_def_opt_params(req.req_id, under, expirations, strikes))
    out.append(msg.sec_def_opt_params_end(req.req_id))
    s.write_many(out)
