"""The charts module: candles over sessions side by side, indicators broken at session gaps,
fills marked at their bar and price, money on the equity axis; checked on the Figure."""

from __future__ import annotations

from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from bot.charts import bars_frame, render_png
from charts import Marker, equity_chart_png, equity_figure, price_chart_png, price_figure
from charts.equity import money
from charts.sessions import session_starts, time_ticks
from engine.reports import ChartData, ChartMarker

NEW_YORK = ZoneInfo("America/New_York")


def sessions(
    days: list[str], per_day: int = 12, minutes: int = 30, start: str = "09:30"
) -> pd.DataFrame:
    """`per_day` bars from `start` New York on each day; closes 100, 101, 102, ... in order."""
    times = [
        pd.Timestamp(f"{day} {start}", tz=NEW_YORK) + pd.Timedelta(minutes=minutes * i)
        for day in days
        for i in range(per_day)
    ]
    close = 100.0 + np.arange(len(times))
    return pd.DataFrame(
        {"open": close - 0.5, "high": close + 1, "low": close - 1.5, "close": close,
         "volume": np.full(len(times), 1000.0)},
        index=pd.DatetimeIndex(times).tz_convert(UTC),
    )


# Friday 2026-03-06, then Monday 2026-03-09: a weekend between the two sessions.
FRIDAY_MONDAY = ["2026-03-06", "2026-03-09"]


def by_gid(figure: Figure, gid: str) -> list:
    return [
        artist
        for axes in figure.axes
        for artist in (*axes.collections, *axes.lines, *axes.patches)
        if artist.get_gid() == gid
    ]


def tick_labels(figure: Figure) -> list[str]:
    figure.canvas.draw()
    return [t.get_text() for axes in figure.axes
            for t in (*axes.get_xticklabels(), *axes.get_yticklabels()) if t.get_text()]


def test_one_candle_per_bar_and_the_weekend_takes_no_room() -> None:
    bars = sessions(FRIDAY_MONDAY)
    figure = price_figure(bars, tz=NEW_YORK)
    (candles,) = by_gid(figure, "candles")
    assert len(candles.get_paths()) == 24
    centres = [path.vertices[:4, 0].mean() for path in candles.get_paths()]
    assert centres == pytest.approx(list(range(24)))  # Friday's last bar at 11, Monday's at 12
    assert len(by_gid(figure, "volume")) == 24  # one volume bar per candle
    (wicks,) = by_gid(figure, "wicks")
    assert len(wicks.get_segments()) == 24
    breaks = by_gid(figure, "session-break")
    assert {line.get_xdata()[0] for line in breaks} == {11.5}


def test_candles_are_coloured_by_direction() -> None:
    bars = sessions(["2026-03-06"], per_day=2)
    bars.iloc[1, bars.columns.get_loc("open")] = bars.close.iloc[1] + 2  # the second falls
    (candles,) = by_gid(price_figure(bars), "candles")
    up, down = candles.get_facecolors()
    assert up[1] > up[0] and down[0] > down[1]  # green, then red


def test_many_bars_become_fewer_candles_within_sessions() -> None:
    bars = sessions(["2026-03-05", "2026-03-06", "2026-03-09"], per_day=130, minutes=3)
    figure = price_figure(bars, max_candles=100)
    (candles,) = by_gid(figure, "candles")
    # 390 bars, 4 per candle, restarted at each session: ceil(130 / 4) = 33 candles a session.
    assert len(candles.get_paths()) == 99
    spans = [(path.vertices[:, 0].min(), path.vertices[:, 0].max()) for path in candles.get_paths()]
    for gap in (129.5, 259.5):  # no candle spans a session gap
        assert not any(left < gap < right for left, right in spans)
    assert "each candle: 4 bars" in figure.axes[0].get_title(loc="left")


def test_an_indicator_stops_at_the_session_gap() -> None:
    bars = sessions(FRIDAY_MONDAY)
    sma = bars.close.rolling(3).mean()
    (line,) = by_gid(price_figure(bars, {"sma3": sma}), "indicator:sma3")
    x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    gap = int(np.flatnonzero(np.isnan(x))[0])
    assert np.isnan(y[gap]) and x[gap - 1] == 11 and x[gap + 1] == 12
    assert np.count_nonzero(np.isnan(x)) == 1
    assert y[gap + 1] == pytest.approx(sma.iloc[12])


def test_fills_are_marked_at_their_bar_and_price() -> None:
    bars = sessions(FRIDAY_MONDAY)
    within_bar_3 = bars.index[3] + timedelta(minutes=10)
    monday_open = bars.index[12] + timedelta(seconds=1)
    fills = [
        Marker(within_bar_3, "BUY", 103.25),
        (monday_open, "SELL", 111.5),
        ChartMarker(bars.index[20], 119.0, "BUY"),  # the engine's marker: time, price, side
        Marker(bars.index[0] - timedelta(hours=1), "SELL", 90.0),  # before the chart: left out
    ]
    figure = price_figure(bars, markers=fills)
    (buys,) = by_gid(figure, "markers:BUY")
    (sells,) = by_gid(figure, "markers:SELL")
    assert buys.get_offsets().tolist() == [[3, 103.25], [20, 119.0]]
    assert sells.get_offsets().tolist() == [[12, 111.5]]
    assert buys.get_paths()[0] is not sells.get_paths()[0]  # up and down triangles


def test_time_labels_are_dates_at_session_starts_and_times_within() -> None:
    bars = sessions(FRIDAY_MONDAY)
    assert session_starts(bars.index).tolist() == [0, 12]
    ticks = dict(time_ticks(bars.index, NEW_YORK))
    assert ticks[0] == "Fri 06 Mar" and ticks[12] == "Mon 09 Mar"
    within = [label for index, label in ticks.items() if index not in (0, 12)]
    assert within and all(len(label) == 5 and label[2] == ":" for label in within)
    assert "12:00" in within  # New York time, not UTC (17:00)
    labels = tick_labels(price_figure(bars, tz=NEW_YORK))
    assert "Fri 06 Mar" in labels and "Mon 09 Mar" in labels


def test_daily_bars_have_dates_and_a_year() -> None:
    days = pd.bdate_range("2025-12-01", periods=60, tz=UTC)
    close = 100 + np.arange(60.0)
    bars = pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close},
                        index=days)
    ticks = time_ticks(bars.index, UTC)
    assert 3 <= len(ticks) <= 10
    assert any("2026" in label for _, label in ticks)
    assert not any(":" in label for _, label in ticks)
    (candles,) = by_gid(price_figure(bars), "candles")
    assert len(candles.get_paths()) == 60
    assert by_gid(price_figure(bars), "volume") == []  # no volume column: no volume panel


def test_prices_are_written_without_an_offset() -> None:
    bars = sessions(["2026-03-06"])
    bars[["open", "high", "low", "close"]] = bars[["open", "high", "low", "close"]] / 1e4 + 5e4
    figure = price_figure(bars)
    labels = tick_labels(figure)
    assert all("e" not in label and "+" not in label for label in labels)
    assert all(axes.yaxis.get_offset_text().get_text() == "" for axes in figure.axes)
    assert any(label.startswith("50,000") or label.startswith("50000") for label in labels)


def test_equity_axis_is_money_and_the_drawdown_is_shaded() -> None:
    times = pd.date_range("2026-01-05", periods=50, freq="B", tz=UTC)
    values = 1_000_000 + np.r_[np.arange(25) * 200, 5_000 - np.arange(25) * 300]
    figure = equity_figure(pd.Series(values, index=times, dtype=float), "test")
    labels = tick_labels(figure)
    money_labels = [label for label in labels if label.startswith("$")]
    assert money_labels and all("," in label for label in money_labels)
    assert "$1,000,000" in money_labels
    assert not any("e+" in label or "1e6" in label for label in labels)
    assert all(axes.yaxis.get_offset_text().get_text() == "" for axes in figure.axes)
    assert by_gid(figure, "drawdown") and by_gid(figure, "drawdown-shade")
    assert any(label.endswith("%") for label in labels)
    assert "max drawdown -0.72%" in figure.axes[0].get_title(loc="right")


def test_money_is_as_precise_as_the_ticks_need() -> None:
    assert money(1_002_500, 2_500) == "$1,002,500"
    assert money(1_002.75, 0.5) == "$1,002.75"
    assert money(12_500_000, 2_500_000) == "$12.50M"
    assert money(-1_500, 500) == "-$1,500"


def test_png_bytes_and_a_file(tmp_path) -> None:
    bars = sessions(FRIDAY_MONDAY)
    path = tmp_path / "price.png"
    png = price_chart_png(bars, {"sma3": bars.close.rolling(3).mean()}, [], NEW_YORK, "t", path)
    assert png.startswith(b"\x89PNG") and path.read_bytes() == png
    equity = pd.Series([1e6, 1.01e6], index=bars.index[:2])
    assert equity_chart_png(equity, "e").startswith(b"\x89PNG")


def test_bad_input_is_refused() -> None:
    bars = sessions(["2026-03-06"])
    with pytest.raises(ValueError, match="no bars"):
        price_figure(bars.iloc[:0])
    with pytest.raises(ValueError, match="tz-aware"):
        price_figure(bars.tz_localize(None))
    with pytest.raises(ValueError, match="indicator sma"):
        price_figure(bars, {"sma": [1.0, 2.0]})
    with pytest.raises(ValueError, match="no equity"):
        equity_figure(pd.Series([], dtype=float))


def test_chart_data_from_the_engine_becomes_bars() -> None:
    bars = sessions(FRIDAY_MONDAY)
    times = tuple(t.to_pydatetime() for t in bars.index)
    data = ChartData(
        "AAPL", times, tuple(bars.close), {"sma3": (None,) * 5 + tuple(bars.close[5:])},
        (ChartMarker(times[2], 102.0, "BUY"),),
        opens=tuple(bars.open), highs=tuple(bars.high), lows=tuple(bars.low),
        volumes=tuple(bars.volume),
    )
    frame = bars_frame(data)
    pd.testing.assert_frame_equal(frame, bars, check_freq=False, check_names=False)
    assert render_png(data, NEW_YORK, "sim").startswith(b"\x89PNG")
    closes_only = ChartData("AAPL", times, tuple(bars.close))
    assert (bars_frame(closes_only)["open"] == bars.close).all()
    assert render_png(ChartData(None, times[:3], (1e6, 1.001e6, 0.999e6)), UTC, "paper")


def test_a_session_start_keeps_its_label_over_a_nearby_time() -> None:
    # Two sessions of 8 hourly bars from 13:00 UTC: a 2-hour step puts "20:00" on the first
    # session's last bar, one bar before the next session's start: too close for both labels.
    bars = sessions(["2026-11-23", "2026-11-24"], per_day=8, minutes=60, start="08:00")
    ticks = dict(time_ticks(bars.index, UTC))
    assert ticks[0] == "Mon 23 Nov" and ticks[8] == "Tue 24 Nov"
    assert 7 not in ticks
