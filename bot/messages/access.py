"""Messages about who may act and where: stale commands, read-only and anonymous senders, a
stranger's attempt, and a group that became a supergroup."""

from __future__ import annotations

from datetime import datetime, tzinfo

from bot.messages.document import Doc, clip
from bot.messages.numbers import duration, stamp


def stale_command_doc(command: str, sent: datetime, tz: tzinfo, age_seconds: float) -> Doc:
    return Doc(
        f"Ignored {command}",
        (
            f"sent at {stamp(sent, tz)}, {duration(age_seconds)} ago: commands older than 60 s are "
            "not executed. Send it again if you still mean it.",
        ),
        icon="⌛",
    )


def read_only_doc(command: str) -> Doc:
    return Doc(f"{command} needs an operator", ("you have read-only access",), icon="🔒")


def anonymous_doc(command: str) -> Doc:
    return Doc(
        f"{command} needs an operator",
        ("you post anonymously, as the group: post as yourself to act",),
        icon="🔒",
    )


def stranger_doc(user: str, chat: str, text: str) -> Doc:
    return Doc(
        "Unauthorized access attempt",
        (
            f"user {user} in chat {chat}",
            f"sent: {clip(text, 80)}",
            "they were told 'not authorized' and got no data; next alert for them in 1 h",
        ),
        icon="🚷",
    )


def chat_moved_doc(old: int, new: int) -> Doc:
    return Doc(
        "This group became a supergroup",
        (
            f"Telegram moved it from chat id {old} to {new}.",
            "Commands and alerts follow it (remembered across restarts).",
            f"Update TELEGRAM_ALLOWED_CHAT_IDS: replace {old} with {new}.",
        ),
        icon="🔀",
    )
