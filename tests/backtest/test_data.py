"""CSV bars are checked before use: each kind of problem is one line naming the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from backtest.data import DataError, load_csv

HEADER = "datetime,open,high,low,close,volume\n"
GOOD = [
    "2026-01-05T14:30:00Z,10,11,9,10.5,100\n",
    "2026-01-05T14:31:00Z,10.5,11,10,10.8,100\n",
    "2026-01-05T14:32:00+00:00,10.8,11.2,10.6,11,100\n",
]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "aapl.csv"
    path.write_text(text)
    return path


def test_a_good_file_loads_with_its_bar_size_and_symbol(tmp_path: Path) -> None:
    data = load_csv(_write(tmp_path, HEADER + "".join(GOOD)))
    assert (data.symbol, len(data), data.bar_seconds) == ("AAPL", 3, 60)
    assert str(data.frame.index.tz) == "UTC"
    assert data.frame["close"].tolist() == [10.5, 10.8, 11.0]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("2026-01-05T14:33:00Z,11,12,10,abc,100\n", "line 5: close 'abc' is not a number"),
        ("2026-01-05T14:33:00Z,11,12,10,NaN,100\n", "line 5: close 'NaN' is not a number"),
        ("2026-01-05T14:33:00Z,11,12,10,,100\n", "line 5: close '' is not a number"),
        ("2026-01-05T14:33:00Z,0,12,10,11,100\n", "line 5: open is 0; prices must be greater"),
        ("2026-01-05T14:33:00Z,11,12,-1,11,100\n", "line 5: low is -1; prices must be greater"),
        ("05/01/2026 14:33,11,12,10,11,100\n", "line 5: datetime '05/01/2026 14:33' is not an "
                                               "ISO 8601"),
        ("2026-01-05T14:31:30Z,11,12,10,11,100\n", "line 5: 2026-01-05T14:31:30+00:00 is not "
                                                   "after the row before it"),
        ("2026-01-05T14:32:00Z,11,12,10,11,100\n", "line 5: 2026-01-05T14:32:00+00:00 is not "
                                                   "after the row before it"),  # a duplicate
        ("2026-01-05T14:33:00Z,11,10,12,11,100\n", "line 5: high and low do not contain"),
    ],
)
def test_each_kind_of_bad_row_is_named(tmp_path: Path, line: str, message: str) -> None:
    path = _write(tmp_path, HEADER + "".join(GOOD) + line)
    with pytest.raises(DataError) as error:
        load_csv(path)
    text = str(error.value)
    assert text.startswith(f"{path}: {message}")
    assert "\n" not in text


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "datetime,open,high,low,close\n2026-01-05T14:30:00Z,1,1,1,1\n")
    with pytest.raises(DataError, match=r"missing column volume \(the header must be "
                                        r"datetime,open,high,low,close,volume\)"):
        load_csv(path)


@pytest.mark.parametrize(("text", "message"), [
    ("", "not a CSV of bars"),
    (HEADER, "no bars"),
])
def test_an_empty_file_is_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_csv(_write(tmp_path, text))


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_csv(tmp_path / "nope.csv")
