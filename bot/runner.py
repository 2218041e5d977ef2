"""`tradebot run`: wires settings, journal, gateway, engine and front-end together."""

from __future__ import annotations

from engine.config import Settings


def run(settings: Settings) -> int:
    print("tradebot: the trading engine is not built yet; settings are valid:")
    print(f"  symbols {', '.join(map(str, settings.symbols))}, strategy {settings.strategy}")
    return 0
