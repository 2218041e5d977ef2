"""The document model: a `Doc` of plain lines and `Table`s, rendered to Telegram HTML or plain text.

A `Doc` holds only plain strings; the renderers escape them, so no dynamic value can reach
Telegram's HTML parser unescaped. Tables are monospace `<pre>` blocks with short columns
(a phone shows about 35 characters), and long documents split under Telegram's 4,096 limit.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, tzinfo

from bot.messages.numbers import stamp
from engine.logs import redact

TELEGRAM_LIMIT = 4096
TITLE_LIMIT = 200  # a longer title (a long error) continues in the body, where it can split
_CELL_WIDTH = 10  # a phone shows ~35 monospace characters: keep columns short
SYMBOL_WIDTH = 18  # a symbol column's: an option's name is 18 ("AAPL 20261218 200C")


@dataclass(frozen=True, slots=True)
class Table:
    """A small table; the first column is left-aligned, the others right-aligned."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    symbol_column: int | None = None  # this one is as wide as an option's name

    def lines(self) -> list[str]:
        cells = [self.header, *self.rows]
        columns = len(self.header)
        clipped = [
            tuple(clip(str(c), SYMBOL_WIDTH if i == self.symbol_column else _CELL_WIDTH)
                  for i, c in enumerate(row[:columns]))
            for row in cells
        ]
        widths = [
            max(len(row[i]) if i < len(row) else 0 for row in clipped) for i in range(columns)
        ]

        def render(row: tuple[str, ...]) -> str:
            padded = [
                (row[i] if i < len(row) else "").ljust(widths[i])
                if i == 0
                else (row[i] if i < len(row) else "").rjust(widths[i])
                for i in range(columns)
            ]
            return " ".join(padded).rstrip()

        return [render(row) for row in clipped]


Block = str | Table


@dataclass(frozen=True, slots=True)
class Doc:
    """A titled message: plain-text lines and tables, rendered by `to_html` or `to_plain`."""

    title: str
    blocks: tuple[Block, ...] = ()
    icon: str = ""


def mode_tag(mode: str) -> str:
    return {"sim": "[SIM]", "paper": "[PAPER]", "live": "[LIVE]"}.get(
        mode.lower(), f"[{mode.upper() or '?'}]"
    )


def telegram_length(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units), an upper bound after tags are parsed."""
    return len(text.encode("utf-16-le")) // 2


def _title_html(doc: Doc, mode: str, continued: bool) -> str:
    icon = f"{doc.icon} " if doc.icon else ""
    more = " (cont.)" if continued else ""
    return f"<b>{mode_tag(mode)}</b> {icon}<b>{html.escape(doc.title)}</b>{more}"


def _redacted(doc: Doc) -> Doc:
    """`doc` without secrets: an error's text shown to the user may come from a library, and
    PTB's hold the bot token. Table cells are too short to hold one."""
    blocks = tuple(redact(block) if isinstance(block, str) else block for block in doc.blocks)
    return Doc(redact(doc.title), blocks, doc.icon)


def _capped(doc: Doc) -> Doc:
    """`doc` with a title of at most TITLE_LIMIT characters; the rest opens the body."""
    if len(doc.title) <= TITLE_LIMIT:
        return doc
    cut = TITLE_LIMIT - 1
    return Doc(doc.title[:cut] + "…", ("…" + doc.title[cut:], *doc.blocks), doc.icon)


def to_html(doc: Doc, mode: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Render `doc` as Telegram HTML messages, each at most `limit` characters."""
    doc = _capped(_redacted(doc))
    parts: list[str] = []
    current = _title_html(doc, mode, continued=False)
    budget = limit

    def fits(extra: str) -> bool:
        return telegram_length(current) + telegram_length(extra) <= budget

    def flush() -> None:
        nonlocal current
        parts.append(current)
        current = _title_html(doc, mode, continued=True)

    for block in doc.blocks:
        if isinstance(block, Table):
            header, *rows = (html.escape(line) for line in block.lines())

            def pre(chunk: list[str], header: str = header) -> str:
                return "\n<pre>" + "\n".join([header, *chunk]) + "</pre>"

            chunk: list[str] = []
            for row in rows:
                if fits(pre([*chunk, row])):
                    chunk.append(row)
                    continue
                if chunk:
                    current += pre(chunk)
                flush()
                chunk = [row]
            if chunk or not rows:
                if not fits(pre(chunk)):
                    flush()
                current += pre(chunk)
            continue
        for piece in _hard_split(block, limit // 2):
            line = "\n" + html.escape(piece)
            if not fits(line):
                flush()
            current += line
    parts.append(current)
    return parts


def _hard_split(text: str, size: int) -> list[str]:
    """Cut a very long line before escaping, so an entity like &amp; is never cut in half."""
    if telegram_length(text) <= size:
        return [text]
    return [text[i : i + size // 6] for i in range(0, len(text), size // 6)]


def to_plain(doc: Doc, mode: str) -> str:
    """Render `doc` for a terminal: the tag and title, then indented lines and tables."""
    doc = _redacted(doc)
    icon = f"{doc.icon} " if doc.icon else ""
    out = [f"{mode_tag(mode)} {icon}{doc.title}"]
    for block in doc.blocks:
        lines = block.lines() if isinstance(block, Table) else block.splitlines() or [""]
        out.extend(f"  {line}" for line in lines)
    return "\n".join(out)


def one_line(doc: Doc) -> str:
    """The title and first line of a doc: a digest entry."""
    first = next((b for b in doc.blocks if isinstance(b, str) and b), "")
    return f"{doc.title}: {first}" if first else doc.title


def clip(text: str, width: int) -> str:
    """`text` cut to `width` characters, the last one an ellipsis when it was longer."""
    return text if len(text) <= width else text[: width - 1] + "…"


def delayed_note(created: datetime, tz: tzinfo) -> str:
    """Telegram HTML put before an alert sent late, saying when it was raised."""
    return f"<i>delayed, from {html.escape(stamp(created, tz))}</i>\n"
