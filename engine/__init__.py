"""tradebot trading engine: settings, journal, market data, strategies, risk, orders."""

__version__ = "0.1.0"
