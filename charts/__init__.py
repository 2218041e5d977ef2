"""Charts for /chart and the backtest report: candles on a trading-session axis, and the equity
curve with its drawdown. Plain data in (pandas), matplotlib `Figure`s or PNG bytes out."""

from charts.equity import equity_chart_png, equity_figure
from charts.png import figure_png
from charts.price import Marker, price_chart_png, price_figure

__all__ = [
    "Marker",
    "equity_chart_png",
    "equity_figure",
    "figure_png",
    "price_chart_png",
    "price_figure",
]
