"""Request handlers for news, news bulletins and the market scanner."""

from __future__ import annotations

from . import messages as msg
from . import requests as rq
from .bars import BarRequestError, parse_end_time
from .handler_registry import HMDS, handles
from .news import NoSuchArticle
from .scanner import ScanError, parameters_xml
from .scanner_fanout import SCANNER_REFRESH_SECONDS, ranking
from .session import ClientSession, ScannerSub
from .state import ServerState


@handles(rq.ReqNewsBulletins)
def _news_bulletins(state: ServerState, s: ClientSession, req: rq.ReqNewsBulletins) -> None:
    s.subs.bulletins = True
    if req.all_msgs:
        s.write_many([msg.news_bulletin(b) for b in state.bulletins.since(state.day_start())])


@handles(rq.CancelNewsBulletins)
def _cancel_news_bulletins(
    state: ServerState, s: ClientSession, req: rq.CancelNewsBulletins
) -> None:
    s.subs.bulletins = False


# --- news ----------------------------------------------------------------------------------

_NEWS_NOT_ALLOWED = 10276  # IB: "News feed is not allowed"
_MAX_HEADLINES = 300  # IB's cap on totalResults


def _news_refused(s: ClientSession, req_id: int, missing: list[str]) -> None:
    s.send_error(req_id, _NEWS_NOT_ALLOWED,
                 f"News feed is not allowed: no subscription to {'+'.join(missing)}")  # fmt: skip


@handles(rq.ReqNewsProviders)
def _news_providers(state: ServerState, s: ClientSession, req: rq.ReqNewsProviders) -> None:
    s.write(msg.news_providers(state.news.providers()))


@handles(rq.ReqHistoricalNews)
def _historical_news(state: ServerState, s: ClientSession, req: rq.ReqHistoricalNews) -> None:
    spec = state.universe.get(req.con_id)
    if spec is None:
        s.send_error(req.req_id, 200, "No security definition has been found for the request")
        return
    codes = [c for c in req.provider_codes.upper().split("+") if c]
    missing = state.news.missing(codes)
    if missing:
        _news_refused(s, req.req_id, missing)
        return
    now = state.clock.now()
    try:
        start = parse_end_time(req.start, state.time_zone)
        end = parse_end_time(req.end, state.time_zone)
    except BarRequestError as exc:
        s.send_error(req.req_id, 321, f"Error validating request: {exc}")
        return
    limit = min(max(req.total_results, 1), _MAX_HEADLINES)
    found, more = state.news.headlines(spec.symbol, codes, start, min(end or now, now), limit)
    s.write_many([msg.historical_news(req.req_id, h) for h in found])
    s.write(msg.historical_news_end(req.req_id, more))


@handles(rq.ReqNewsArticle)
def _news_article(state: ServerState, s: ClientSession, req: rq.ReqNewsArticle) -> None:
    missing = state.news.missing([req.provider_code.upper()])
    if missing:
        _news_refused(s, req.req_id, missing)
        return
    try:
        text = state.news.article(req.article_id, state.clock.now())
    except NoSuchArticle:
        s.send_error(req.req_id, 10172, f"Failed to request news article: {req.article_id}")
        return
    s.write(msg.news_article(req.req_id, text))


# --- market scanner --------------------------------------------------------------------------


@handles(rq.ReqScannerParameters)
def _scanner_parameters(state: ServerState, s: ClientSession, req: rq.ReqScannerParameters) -> None:
    s.write(msg.scanner_parameters(parameters_xml()))


@handles(rq.ReqScannerSubscription)
def _scanner(state: ServerState, s: ClientSession, req: rq.ReqScannerSubscription) -> None:
    """Ranked now, and again every SCANNER_REFRESH_SECONDS until cancelled, as IB does."""
    now = state.clock.now()
    sub = ScannerSub(req.scan_code, req.instrument, req.location, req.rows, req.above_price,
                     req.below_price, now + SCANNER_REFRESH_SECONDS)
    try:
        s.write(ranking(state, req.req_id, sub, now))
    except ScanError as exc:
        s.send_error(req.req_id, 162, f"{HMDS}{exc}")
        return
    s.subs.scanner[req.req_id] = sub


@handles(rq.CancelScannerSubscription)
def _cancel_scanner(
    state: ServerState, s: ClientSession, req: rq.CancelScannerSubscription
) -> None:
    s.subs.scanner.pop(req.req_id, None)
