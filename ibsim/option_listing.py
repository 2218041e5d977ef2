"""Option listings as the simulated days pass: each new day (New York) every stock gets the
expiries its chain now lacks (a new weekly, a new monthly), with strikes around its price then;
expired ones stay known by conId (positions settle against them) but are no longer listed."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from .contracts import Universe
from .market import Market
from .options import expiries, option_chain

LISTING_TZ = ZoneInfo("America/New_York")


class OptionListing:
    def __init__(self, universe: Universe, market: Market) -> None:
        self.universe = universe
        self.market = market
        self._day: dt.date | None = None

    def run(self, t: float) -> None:
        """List what is due on the day of simulated epoch ``t`` (once a day; cheap otherwise)."""
        day = dt.datetime.fromtimestamp(t, LISTING_TZ).date()
        if day == self._day:
            return
        self._day = day
        due = expiries(day)
        for under in list(self.universe):
            if under.sec_type != "STK":
                continue
            listed = {o.last_trade_date for o in self.universe.option_chain(under.con_id)}
            missing = {d for d in due if f"{d:%Y%m%d}" not in listed}
            if not missing:
                continue
            spot = self.market.price_ticks(under, t) * under.min_tick
            chain = option_chain(under, spot, day, t, self.universe.by_con_id, missing)
            self.universe.add_options(under.con_id, chain)
