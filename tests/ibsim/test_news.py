"""News through ib_async: the providers the account has, headlines for a contract (newest first,
nothing after the clock's now, the same every run), articles, and the answers without a
subscription."""

from __future__ import annotations

import datetime as dt

import pytest
from ib_async import IB, NewsProvider, RequestError

from ibsim import SimGateway

from .conftest import START, connect


def _con_id(gw: SimGateway, symbol: str = "AAPL") -> int:
    return gw.spec(symbol).con_id


async def test_providers_are_the_subscribed_ones(gw: SimGateway, ib: IB) -> None:
    providers = await ib.reqNewsProvidersAsync()
    assert [p.code for p in providers] == ["BRFG", "BRFUPDN", "DJNL"]
    assert providers[0] == NewsProvider("BRFG", "Briefing.com General Market Columns")


async def test_headlines_newest_first_up_to_now_and_deterministic(gw: SimGateway, ib: IB) -> None:
    news = await ib.reqHistoricalNewsAsync(_con_id(gw), "BRFG+BRFUPDN+DJNL", "", "", 10)
    assert news is not None and len(news) == 10
    times = [h.time.replace(tzinfo=dt.UTC) for h in news]
    assert times == sorted(times, reverse=True)
    assert times[0] <= START
    assert all("AAPL" in h.headline for h in news)
    assert {h.providerCode for h in news} <= {"BRFG", "BRFUPDN", "DJNL"}
    again = await ib.reqHistoricalNewsAsync(_con_id(gw), "BRFG+BRFUPDN+DJNL", "", "", 10)
    assert again == news
    only = await ib.reqHistoricalNewsAsync(_con_id(gw), "DJNL", "", "", 5)
    assert only and {h.providerCode for h in only} == {"DJNL"}


async def test_a_time_range_bounds_the_headlines(gw: SimGateway, ib: IB) -> None:
    start = START - dt.timedelta(days=2)
    end = START - dt.timedelta(days=1)
    news = await ib.reqHistoricalNewsAsync(_con_id(gw), "BRFG+BRFUPDN+DJNL", start, end, 300)
    assert news
    assert all(start < h.time.replace(tzinfo=dt.UTC) <= end for h in news)


async def test_article_of_a_headline(gw: SimGateway, ib: IB) -> None:
    ib.RaiseRequestErrors = True
    news = await ib.reqHistoricalNewsAsync(_con_id(gw), "BRFUPDN", "", "", 1)
    assert news
    article = await ib.reqNewsArticleAsync("BRFUPDN", news[0].articleId)
    assert article.articleType == 0
    assert article.articleText.startswith(news[0].headline)
    with pytest.raises(RequestError) as missing:
        await ib.reqNewsArticleAsync("BRFUPDN", "BRFUPDN$AAPL-1-99")
    assert missing.value.code == 10172


async def test_no_news_subscription() -> None:
    async with SimGateway(seed=7, speed=0, start=START, news_providers=[]) as gw:
        ib = await connect(gw)
        ib.RaiseRequestErrors = True
        try:
            assert await ib.reqNewsProvidersAsync() == []
            with pytest.raises(RequestError) as refused:
                await ib.reqHistoricalNewsAsync(_con_id(gw), "BRFG", "", "", 5)
            assert refused.value.code == 10276 and "BRFG" in refused.value.message
        finally:
            ib.disconnect()


async def test_an_unsubscribed_provider_or_unknown_contract_is_refused(
    gw: SimGateway, ib: IB
) -> None:
    ib.RaiseRequestErrors = True
    with pytest.raises(RequestError) as refused:
        await ib.reqHistoricalNewsAsync(_con_id(gw), "BRFG+BZ", "", "", 5)
    assert refused.value.code == 10276 and "BZ" in refused.value.message
    with pytest.raises(RequestError) as unknown:
        await ib.reqHistoricalNewsAsync(999_999, "BRFG", "", "", 5)
    assert unknown.value.code == 200


def test_unknown_providers_are_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="BZ"):
        SimGateway(news_providers=["BZ"])
