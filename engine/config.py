"""Settings from the environment and `.env`, validated once at start-up.

A bad value becomes a `SettingsError` whose lines each name the variable and what it expects;
the CLI prints them and exits with code 2.
"""

from __future__ import annotations

import difflib
import io
import ipaddress
import math
import os
import re
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv.parser import parse_stream
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engine.domain import Instrument, expiry_date
from engine.strategies import StrategyNotFound, parse_params
from engine.strategies.base import StrategyParams

# IB Gateway, TWS, and the gnzsnz/ib-gateway container's socat port (4004 is its paper one).
LIVE_PORTS = frozenset({4001, 7496, 4003})

BAR_SIZES: dict[str, int] = {
    "5 secs": 5,
    "10 secs": 10,
    "15 secs": 15,
    "30 secs": 30,
    "1 min": 60,
    "2 mins": 120,
    "3 mins": 180,
    "5 mins": 300,
    "10 mins": 600,
    "15 mins": 900,
    "20 mins": 1200,
    "30 mins": 1800,
    "1 hour": 3600,
}

DEFAULT_EXCHANGE = {"STK": "SMART", "CASH": "IDEALPRO", "CRYPTO": "PAXOS"}
SEC_TYPES = ("STK", "CASH", "CRYPTO", "FUT", "OPT")
ALERT_KINDS = (
    "fills",
    "orders",
    "errors",
    "connection",
    "risk",
    "reconcile",
    "lifecycle",
    "daily_summary",
    "bulletins",
)

# Every number has a finite range, so inf, nan or a typo's extra zeros stop the start instead of
# the trading. The ends are far beyond real use, except where the simulator sets them: beyond an
# hour per wall second its market falls behind its clock and leaves datetime's range (ibsim/cli.py
# holds the same limits for `tradebot sim-gateway`); numpy seeds are unsigned 32-bit.
MAX_QUANTITY = 1e9
MAX_MONEY = 1e12
MAX_ORDERS_PER_MINUTE = 100_000
MAX_TAKE_PROFIT_PCT = 1000.0
MIN_SNAPSHOT_MINUTES = 0.1
MAX_SNAPSHOT_MINUTES = 7 * 24 * 60.0
# The gateway away this long (broker time) is told again: once, not at every retry.
MIN_AWAY_ALERT_MINUTES = 1.0
MAX_AWAY_ALERT_MINUTES = 1440.0
MIN_SIM_SPEED = 0.1
MAX_SIM_SPEED = 3600.0
MAX_SIM_SEED = 2**32 - 1
MAX_RETENTION_DAYS = 3650

AlertLevel = Literal["on", "silent", "off"]
IdList = Annotated[frozenset[int], NoDecode]

# What each setting expects, in the words the error line uses.
EXPECTED: dict[str, str] = {
    "ib_host": "a host name or IP address, or empty for the built-in simulated gateway",
    "ib_port": "a TCP port number 1-65535 (4002/7497/4004 paper, 4001/7496/4003 live)",
    "ib_client_id": "a whole number from 1 to 2147483647",
    "trading_mode": "'paper' or 'live'",
    "bar_size": "one of: " + ", ".join(BAR_SIZES),
    "order_quantity": f"a number greater than 0 and at most {MAX_QUANTITY:,.0f}",
    "max_position": f"a number greater than 0 and at most {MAX_QUANTITY:,.0f}",
    "max_notional": f"an amount greater than 0 and at most {MAX_MONEY:,.0f}",
    "max_daily_loss": f"an amount greater than 0 and at most {MAX_MONEY:,.0f}",
    "max_orders_per_minute": f"a whole number from 1 to {MAX_ORDERS_PER_MINUTE:,}",
    "stop_loss_pct": "a percentage greater than 0 and below 100, or empty",
    "take_profit_pct": f"a percentage greater than 0 and at most {MAX_TAKE_PROFIT_PCT:g}, or empty",
    "outside_rth": "true or false",
    "telegram_allowed_chat_ids": "a comma list of numeric chat ids",
    "telegram_operator_ids": "a comma list of numeric user ids",
    "log_level": "DEBUG, INFO, WARNING or ERROR",
    "sim_speed": f"a number from {MIN_SIM_SPEED:g} to {MAX_SIM_SPEED:g} "
    "(simulated seconds per wall second)",
    "sim_seed": f"a whole number from 0 to {MAX_SIM_SEED}",
    "equity_snapshot_minutes": f"a number of minutes from {MIN_SNAPSHOT_MINUTES:g} to "
    f"{MAX_SNAPSHOT_MINUTES:g} (a week)",
    "daily_summary_time": "a time as HH:MM, or empty for none",
    "gateway_away_alert_minutes": f"a number of minutes from {MIN_AWAY_ALERT_MINUTES:g} to "
    f"{MAX_AWAY_ALERT_MINUTES:g} (a day)",
    "display_tz": "an IANA time zone such as Europe/Berlin or America/New_York",
    "journal_retention_days": f"a whole number of days from 1 to {MAX_RETENTION_DAYS} "
    "(ten years)",
    "db_path": "the journal's file name, e.g. tradebot.sqlite3 (not empty, not a folder)",
    "health_port": "a TCP port number 1-65535 for /healthz and /metrics on 127.0.0.1, "
    "or empty for none",
    "cancel_orders_on_exit": "true or false",
    "telegram_api_base_url": "an https:// URL such as https://api.telegram.org/bot "
    "(http:// only to a loopback host: 127.0.0.1, ::1, localhost)",
    **{f"alert_{kind}": "'on', 'silent' or 'off'" for kind in ALERT_KINDS},
}

_SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9. ]{0,20}$")
_EXPIRY_RE = re.compile(r"^20[0-9]{2}(0[1-9]|1[0-2])([0-3][0-9])?$")  # YYYYMM or YYYYMMDD


class SettingsError(Exception):
    """Bad settings; each line names a variable and what it expects."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def parse_symbols(text: str) -> tuple[Instrument, ...]:
    """Parse `SYMBOL` or `SYMBOL:SECTYPE[:EXCHANGE[:CURRENCY]]` items of a comma list; a
    future may end with its expiry (`ES:FUT:CME:202703`), without which it follows the front
    month; an option is `SYMBOL:OPT:YYYYMMDD:STRIKE:C|P[:EXCHANGE[:CURRENCY]]` (one already
    expired is not refused here: the engine drops it at start with an alert, so a restart
    after an expiry never stops the bot)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError("expected at least one symbol, e.g. AAPL,MSFT or EURUSD:CASH")
    instruments: list[Instrument] = []
    for item in items:
        parts = [part.strip().upper() for part in item.split(":")]
        if len(parts) > 1 and parts[1] == "OPT":
            instruments.append(parse_option(item))
            continue
        expiry = ""
        if len(parts) > 2 and parts[1] == "FUT" and _EXPIRY_RE.match(parts[-1]):
            expiry = parts.pop()
        if len(parts) > 4 or not _SYMBOL_RE.match(parts[0]):
            raise ValueError(
                f"{item!r} is not SYMBOL or SYMBOL:SECTYPE[:EXCHANGE[:CURRENCY]]"
            )
        sec_type = parts[1] if len(parts) > 1 and parts[1] else "STK"
        if sec_type not in SEC_TYPES:
            raise ValueError(f"{item!r}: security type must be one of {', '.join(SEC_TYPES)}")
        exchange = parts[2] if len(parts) > 2 and parts[2] else DEFAULT_EXCHANGE.get(sec_type)
        if exchange is None:
            raise ValueError(f"{item!r}: a {sec_type} needs an exchange, e.g. ES:FUT:CME")
        currency = parts[3] if len(parts) > 3 and parts[3] else "USD"
        if sec_type == "CASH":
            if len(parts[0]) != 6:
                raise ValueError(f"{item!r}: a CASH pair is six letters, e.g. EURUSD:CASH")
            currency = parts[0][3:]
        instruments.append(Instrument(parts[0], sec_type, exchange, currency, expiry))
    names = [instrument.symbol for instrument in instruments]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"{', '.join(duplicates)} listed more than once")
    return tuple(instruments)


OPTION_GRAMMAR = (
    "SYMBOL:OPT:YYYYMMDD:STRIKE:C|P[:EXCHANGE[:CURRENCY]], e.g. AAPL:OPT:20261218:200:C"
)


def parse_option(item: str) -> Instrument:
    """One option of SYMBOLS (`AAPL:OPT:20261218:200:C`); a ValueError names what is wrong."""
    parts = [part.strip().upper() for part in item.split(":")]
    if not 5 <= len(parts) <= 7 or not _SYMBOL_RE.match(parts[0]):
        raise ValueError(f"{item!r} is not an option: expected {OPTION_GRAMMAR}")
    underlying, _, expiry_text, strike_text, right = parts[:5]
    expiry = expiry_date(expiry_text)
    if expiry is None:
        raise ValueError(f"{item!r}: the expiry {expiry_text!r} is not a date as YYYYMMDD")
    strike = option_strike(strike_text)
    if strike is None:
        raise ValueError(f"{item!r}: the strike {strike_text!r} is not a positive number")
    if right not in ("C", "P"):
        raise ValueError(f"{item!r}: the right {right!r} is not C (call) or P (put)")
    exchange = parts[5] if len(parts) > 5 and parts[5] else "SMART"
    currency = parts[6] if len(parts) > 6 and parts[6] else "USD"
    return Instrument.option(underlying, expiry_text, strike, right, exchange, currency)


def option_strike(text: str) -> float | None:
    """A strike: a positive finite number no larger than MAX_MONEY, or None."""
    try:
        strike = float(text)
    except ValueError:
        return None
    return strike if math.isfinite(strike) and 0 < strike <= MAX_MONEY else None


def normalise_base_url(value: str) -> str:
    """The Bot API base URL without a trailing slash (python-telegram-bot appends the token
    right after it, and `.../bot/` + token is a 404), refused unless the token stays private:
    https, or plain http to this machine (a self-hosted Bot API server on loopback)."""
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError("not an http(s) URL")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ValueError("http:// would send the token in clear to another machine")
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_ids(value: Any) -> Any:
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",") if item.strip()]
        if not all(re.fullmatch(r"-?\d+", item) for item in items):
            raise ValueError("not a list of numbers")
        return frozenset(int(item) for item in items)
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
    )

    ib_host: str = ""
    ib_port: int = Field(4002, ge=1, le=65535)
    ib_client_id: int = Field(1, ge=1, le=2_147_483_647)
    ib_account: str = ""
    trading_mode: Literal["paper", "live"] = "paper"

    symbols: Annotated[tuple[Instrument, ...], NoDecode] = Field(
        default_factory=lambda: parse_symbols("AAPL,MSFT")
    )
    bar_size: str = "1 min"
    strategy: str = "sma_cross"
    strategy_params: Annotated[StrategyParams, NoDecode] = Field(
        default_factory=lambda: parse_params("sma_cross", "fast=10,slow=30")
    )

    order_quantity: float = Field(10, gt=0, le=MAX_QUANTITY, allow_inf_nan=False)
    max_position: float = Field(100, gt=0, le=MAX_QUANTITY, allow_inf_nan=False)
    max_notional: float = Field(50_000, gt=0, le=MAX_MONEY, allow_inf_nan=False)
    max_daily_loss: float = Field(1_000, gt=0, le=MAX_MONEY, allow_inf_nan=False)
    max_orders_per_minute: int = Field(10, ge=1, le=MAX_ORDERS_PER_MINUTE)
    stop_loss_pct: float | None = Field(None, gt=0, lt=100, allow_inf_nan=False)
    take_profit_pct: float | None = Field(
        None, gt=0, le=MAX_TAKE_PROFIT_PCT, allow_inf_nan=False
    )
    outside_rth: bool = False
    equity_snapshot_minutes: float = Field(
        5, ge=MIN_SNAPSHOT_MINUTES, le=MAX_SNAPSHOT_MINUTES, allow_inf_nan=False
    )
    gateway_away_alert_minutes: float = Field(
        15, ge=MIN_AWAY_ALERT_MINUTES, le=MAX_AWAY_ALERT_MINUTES, allow_inf_nan=False
    )

    telegram_bot_token: SecretStr = SecretStr("")
    telegram_allowed_chat_ids: IdList = frozenset()
    telegram_operator_ids: IdList = frozenset()
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    alert_fills: AlertLevel = "on"
    alert_orders: AlertLevel = "on"
    alert_errors: AlertLevel = "on"
    alert_connection: AlertLevel = "on"
    alert_risk: AlertLevel = "on"
    alert_reconcile: AlertLevel = "on"
    alert_lifecycle: AlertLevel = "silent"
    alert_daily_summary: AlertLevel = "on"
    alert_bulletins: AlertLevel = "on"  # IB's news bulletins: exchange halts, system notices
    daily_summary_time: time | None = None
    display_tz: str = "UTC"

    db_path: Path = Path("tradebot.sqlite3")
    journal_retention_days: int = Field(90, ge=1, le=MAX_RETENTION_DAYS)
    log_dir: Path | None = Path("logs")  # None (LOG_DIR empty): no log file, stderr only
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    health_port: int | None = Field(None, ge=1, le=65535)
    cancel_orders_on_exit: bool = False

    sim_speed: float = Field(60, ge=MIN_SIM_SPEED, le=MAX_SIM_SPEED, allow_inf_nan=False)
    sim_seed: int = Field(1, ge=0, le=MAX_SIM_SEED)

    @field_validator("symbols", mode="before")
    @classmethod
    def _symbols(cls, value: Any) -> Any:
        return parse_symbols(value) if isinstance(value, str) else value

    @field_validator("telegram_allowed_chat_ids", "telegram_operator_ids", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        return _parse_ids(value)

    @field_validator("db_path", mode="before")
    @classmethod
    def _db_path(cls, value: Any) -> Any:
        # Path("") is ".", the current folder: SQLite cannot open it and its lock would be "..lock".
        text = str(value).strip()
        if not text or Path(text).is_dir():
            raise ValueError("not a file name")
        return text

    @field_validator("log_dir", mode="before")
    @classmethod
    def _log_dir(cls, value: Any) -> Any:
        # Path("") is ".": an empty LOG_DIR means no log file (journald, Docker read stderr).
        return None if value is None or not str(value).strip() else value

    @field_validator("telegram_api_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return normalise_base_url(value)

    @field_validator("trading_mode", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator(*(f"alert_{kind}" for kind in ALERT_KINDS), mode="before")
    @classmethod
    def _alert_level(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator(
        "stop_loss_pct", "take_profit_pct", "daily_summary_time", "health_port", mode="before"
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("bar_size", mode="before")
    @classmethod
    def _bar_size(cls, value: Any) -> Any:
        text = " ".join(str(value).split()).lower()
        if text not in BAR_SIZES:
            raise ValueError("unknown bar size")
        return text

    @field_validator("display_tz")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown time zone") from exc
        return value

    @model_validator(mode="before")
    @classmethod
    def _strategy_params(cls, data: Any) -> Any:
        # The parameters' meaning depends on STRATEGY, so they are parsed here with it.
        if not isinstance(data, dict):
            return data
        name = str(data.get("strategy", "sma_cross")).strip()
        raw = data.get("strategy_params")
        if isinstance(raw, StrategyParams):
            return data
        if raw is None:
            raw = "fast=10,slow=30" if name == "sma_cross" else ""
        try:
            params = parse_params(name, str(raw))
        except ValueError as exc:
            key = "STRATEGY" if isinstance(exc, StrategyNotFound) else "STRATEGY_PARAMS"
            raise SettingsError([f"{key}: {exc}"]) from None
        return {**data, "strategy": name, "strategy_params": params}

    @model_validator(mode="after")
    def _consistency(self) -> Settings:
        token = self.telegram_bot_token.get_secret_value()
        if token and not self.telegram_allowed_chat_ids:
            raise SettingsError(
                [
                    "TELEGRAM_ALLOWED_CHAT_IDS: required when TELEGRAM_BOT_TOKEN is set "
                    "(comma list of numeric chat ids the bot may serve)"
                ]
            )
        if self.ib_host and self.ib_port in LIVE_PORTS and self.trading_mode != "live":
            raise SettingsError(
                [
                    f"IB_PORT: {self.ib_port} is a live-trading port; use 4002/7497/4004 for "
                    "paper, or set TRADING_MODE=live to trade real money"
                ]
            )
        if self.order_quantity > self.max_position:
            raise SettingsError(["ORDER_QUANTITY: expected a number no larger than MAX_POSITION"])
        return self

    @property
    def bar_seconds(self) -> int:
        return BAR_SIZES[self.bar_size]

    @property
    def simulated(self) -> bool:
        return not self.ib_host

    @property
    def alert_levels(self) -> dict[str, str]:
        return {kind: getattr(self, f"alert_{kind}") for kind in ALERT_KINDS}

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.display_tz)


def _describe(error: dict[str, Any]) -> str:
    field = str(error["loc"][0]) if error.get("loc") else ""
    variable = field.upper() or "settings"
    expected = EXPECTED.get(field)
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if field in ("symbols",):
        return f"{variable}: {message}"
    if field == "telegram_api_base_url":
        # The value is not echoed: a URL pasted from BotFather's docs may hold the token.
        return f"{variable}: {message}; expected {expected}"
    if expected:
        given = error.get("input")
        got = f", got {given!r}" if isinstance(given, str | int | float) else ""
        return f"{variable}: expected {expected}{got}"
    return f"{variable}: {message}"


# Unknown names with these prefixes are taken for misspelt settings, not other programs' own;
# in the environment, shared with every program, only the two no other program would use.
_SETTING_PREFIXES = ("IB_", "TELEGRAM_", "ALERT_", "SIM_", "JOURNAL_")
_ENVIRONMENT_PREFIXES = ("IB_", "TELEGRAM_")


def _unknown_setting(name: str, where: str) -> str | None:
    """A line for a variable that looks meant for tradebot but is no setting of it (a typo
    that would silently leave a default in force: no operators, a higher loss limit)."""
    key = name.strip().lower()
    if key in Settings.model_fields:
        return None
    close = difflib.get_close_matches(key, Settings.model_fields, n=1, cutoff=0.85)
    if not close and not name.upper().startswith(_SETTING_PREFIXES):
        return None
    hint = f"; did you mean {close[0].upper()}?" if close else ""
    return f"{name.strip().upper()} ({where}): not a tradebot setting{hint}"


def _check_env_file(path: Path) -> list[str]:
    """What python-dotenv would silently skip or crash on: unreadable lines, text that is not
    UTF-8, misspelt setting names."""
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        return [f"{path}: line {line} is not UTF-8 text; save the file as UTF-8"]
    except OSError as exc:
        return [f"{path}: cannot be read ({exc.strerror})"]
    problems = []
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            problems.append(
                f"{path}: line {binding.original.line} cannot be read (an unclosed quote?): "
                "fix it or remove it"
            )
        elif binding.key and (line := _unknown_setting(binding.key, str(path))):
            problems.append(line)
    return problems


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Read and validate the settings; raise SettingsError with one line per bad variable."""
    problems = _check_env_file(Path(env_file)) if env_file else []
    problems += [
        line for name in os.environ
        if name.upper().startswith(_ENVIRONMENT_PREFIXES)
        and (line := _unknown_setting(name, "environment"))
    ]
    if problems:
        raise SettingsError(problems)
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except SettingsError:
        raise
    except ValidationError as exc:
        raise SettingsError([_describe(error) for error in exc.errors()]) from None
