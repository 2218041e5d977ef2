"""IB's news in words: a news bulletin as an alert."""

from __future__ import annotations

from datetime import tzinfo

from bot.messages.document import Doc
from bot.messages.numbers import clock
from engine.domain import BulletinKind
from engine.events import BulletinEvent

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
