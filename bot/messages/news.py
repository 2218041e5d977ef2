"""IB's news in words: a news bulletin as an alert, the headlines of /news, and what is missing
when the account has no news subscription."""

from __future__ import annotations

from datetime import datetime, tzinfo

from bot.messages.document import Doc
from bot.messages.numbers import clock
from engine.domain import BulletinKind, Headline
from engine.events import BulletinEvent
from engine.reports import NewsReport

_TITLES = {
    BulletinKind.NEWS: "IB bulletin",
    BulletinKind.EXCHANGE_UNAVAILABLE: "IB bulletin: exchange unavailable",
    BulletinKind.EXCHANGE_AVAILABLE: "IB bulletin: exchange available again",
}
_ICONS = {
    BulletinKind.NEWS: "📰",
    BulletinKind.EXCHANGE_UNAVAILABLE: "⛔",
    BulletinKind.EXCHANGE_AVAILABLE: "✅",
}


def bulletin_doc(event: BulletinEvent, tz: tzinfo) -> Doc:
    bulletin = event.bulletin
    source = bulletin.exchange or "IB"
    return Doc(
        f"{_TITLES[bulletin.kind]} ({source})",
        (bulletin.message, f"at {clock(event.time, tz)}"),
        icon=_ICONS[bulletin.kind],
    )


# IB's free API news; what to subscribe to when the account has none.
FREE_PROVIDERS = "Briefing.com (BRFG, BRFUPDN) and Dow Jones Newsletters (DJNL)"


def _when(time: datetime, tz: tzinfo) -> str:
    return time.astimezone(tz).strftime("%b %d %H:%M")


def _headline_line(h: Headline, tz: tzinfo) -> str:
    return f"{_when(h.time, tz)}  {h.provider}: {h.text}"


def news_doc(report: NewsReport, tz: tzinfo) -> Doc:
    codes = ", ".join(p.code for p in report.providers)
    if not report.headlines:
        return Doc(f"News {report.symbol}: no headlines", (f"from {codes}",), icon="📰")
    zone = datetime.now(tz).strftime("%Z") or str(tz)
    return Doc(
        f"News {report.symbol}: the latest {len(report.headlines)}",
        (*(_headline_line(h, tz) for h in report.headlines), f"times in {zone}; from {codes}"),
        icon="📰",
    )


def no_news_subscription_doc(detail: str) -> Doc:
    """The account lacks the news subscription: which one, and where to get it."""
    lines = (
        (f"IB says: {detail}",) if detail else ("The account subscribes to no news provider.",)
    )
    return Doc(
        "No news: a news subscription is missing",
        (
            *lines,
            f"IB's API news from {FREE_PROVIDERS} is free: add it in Client Portal, "
            "Settings → Market Data Subscriptions.",
        ),
        icon="⚠️",
    )
