"""IB's news as ibsim serves it: the providers an account subscribes to, and headlines with
their articles for every symbol, made up from (seed, symbol, day) so every run tells the same
news at the same simulated times, and nothing after the clock's now."""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# IB's free API news providers (Client Portal: Settings → Market Data Subscriptions).
PROVIDERS: dict[str, str] = {
    "BRFG": "Briefing.com General Market Columns",
    "BRFUPDN": "Briefing.com Analyst Actions",
    "DJNL": "Dow Jones Newsletters",
}
_DAY = 86_400
_HEADLINES_PER_DAY = (2, 6)  # uniform in [low, high)
_LOOK_BACK_DAYS = 30  # a request without a start searches this far back

_TEMPLATES: dict[str, tuple[str, ...]] = {
    "BRFG": (
        "{s} moves with the broader market as traders weigh rate outlook",
        "Stocks to watch: {s} in focus ahead of the open",
        "{s} trades near session highs in active volume",
        "Sector rotation puts {s} on the radar",
    ),
    "BRFUPDN": (
        "{s} upgraded to Buy from Hold at a major broker",
        "{s} downgraded to Neutral from Outperform",
        "{s} price target raised by analysts",
        "{s} initiated with Overweight rating",
    ),
    "DJNL": (
        "{s}: what the options market is pricing in",
        "{s} insiders report share transactions",
        "Market talk: {s} guidance draws attention",
        "{s} among the most active names of the morning",
    ),
}


@dataclass(frozen=True, slots=True)
class Headline:
    time: float  # simulated epoch seconds
    provider: str
    article_id: str
    text: str


class NoSuchArticle(KeyError):
    pass


def _day_headlines(seed: int, symbol: str, day: int) -> list[Headline]:
    """The headlines of one UTC day (day number since the epoch), oldest first."""
    rng = np.random.default_rng([seed, zlib.crc32(symbol.encode()), day, 0x4E455753])
    count = int(rng.integers(*_HEADLINES_PER_DAY))
    seconds = np.sort(rng.integers(0, _DAY, count))
    codes = sorted(PROVIDERS)
    out = []
    for i, second in enumerate(seconds):
        provider = codes[int(rng.integers(len(codes)))]
        templates = _TEMPLATES[provider]
        text = templates[int(rng.integers(len(templates)))].format(s=symbol)
        article_id = f"{provider}${symbol}-{day}-{i}"
        out.append(Headline(day * _DAY + int(second), provider, article_id, text))
    return out


class NewsDesk:
    """The news of one gateway: its seed, and the providers the account subscribes to."""

    def __init__(self, seed: int = 1, subscribed: Sequence[str] | None = None) -> None:
        codes = list(PROVIDERS) if subscribed is None else [c.upper() for c in subscribed]
        unknown = [c for c in codes if c not in PROVIDERS]
        if unknown:
            raise ValueError(f"unknown news providers {unknown}; known: {sorted(PROVIDERS)}")
        self.seed = seed
        self.subscribed = tuple(codes)

    def providers(self) -> list[tuple[str, str]]:
        """(code, name) of each provider subscribed to."""
        return [(code, PROVIDERS[code]) for code in self.subscribed]

    def missing(self, codes: Sequence[str]) -> list[str]:
        """The codes asked for that the account has no subscription to (all, if none asked)."""
        return [c for c in codes if c not in self.subscribed] if codes else list(PROVIDERS)

    def headlines(
        self, symbol: str, codes: Sequence[str], start: float | None, end: float, limit: int
    ) -> tuple[list[Headline], bool]:
        """Up to ``limit`` headlines of ``codes`` in (start, end], newest first, and whether
        there were more."""
        first_day = int((start if start is not None else end - _LOOK_BACK_DAYS * _DAY) // _DAY)
        found: list[Headline] = []
        for day in range(int(end // _DAY), first_day - 1, -1):
            for h in reversed(_day_headlines(self.seed, symbol, day)):
                if h.time > end or (start is not None and h.time <= start):
                    continue
                if h.provider not in codes:
                    continue
                if len(found) == limit:
                    return found, True
                found.append(h)
        return found, False

    def article(self, article_id: str, now: float) -> str:
        """The text of an article (NoSuchArticle for an id ibsim never gave, or not yet)."""
        provider, _, rest = article_id.partition("$")
        symbol, _, numbers = rest.rpartition("-")
        symbol, _, day_text = symbol.rpartition("-")
        try:
            day, index = int(day_text), int(numbers)
            h = _day_headlines(self.seed, symbol, day)[index]
        except (ValueError, IndexError):
            raise NoSuchArticle(article_id) from None
        if h.provider != provider or h.time > now:
            raise NoSuchArticle(article_id)
        when = dt.datetime.fromtimestamp(h.time, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        return (
            f"{h.text}\n\n{when} — {PROVIDERS[provider]}. A simulated article about {symbol},"
            " served by ibsim for testing; it carries no information about the market."
        )
