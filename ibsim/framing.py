"""TWS socket framing: 4-byte big-endian length prefix, payload of NUL-terminated fields."""

from __future__ import annotations

import math
import struct

API_SIGN = b"API\0"
_LEN = struct.Struct(">I")
# A frame longer than this is not something ib_async would ever send; treat it as garbage.
MAX_FRAME = 16 * 1024 * 1024


class FramingError(ValueError):
    """The byte stream is not valid TWS framing."""


def encode_frame(fields: list[str]) -> bytes:
    """Encode already-formatted string fields into one length-prefixed frame."""
    payload = ("\0".join(fields) + "\0").encode()
    return _LEN.pack(len(payload)) + payload


class FrameReader:
    """Accumulates received bytes and yields complete frames as lists of fields.

    The very first bytes of a connection are the unframed ``API\\0`` sign; the reader strips
    it before any frame is parsed.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._signed = False

    def feed(self, data: bytes) -> list[list[str]]:
        self._buf += data
        if not self._signed:
            if len(self._buf) < len(API_SIGN):
                return []
            if bytes(self._buf[: len(API_SIGN)]) != API_SIGN:
                raise FramingError("connection did not start with API\\0")
            del self._buf[: len(API_SIGN)]
            self._signed = True
        frames: list[list[str]] = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            if size > MAX_FRAME:
                raise FramingError(f"frame of {size} bytes is too large")
            end = pos + 4 + size
            if len(buf) < end:
                break
            text = bytes(buf[pos + 4 : end]).decode(errors="backslashreplace")
            fields = text.split("\0")
            if fields and fields[-1] == "":
                fields.pop()
            frames.append(fields)
            pos = end
        if pos:
            del buf[:pos]
        return frames


# --- value formatting (server -> client) -------------------------------------------------
# ib_async parses ints with int(), so ints must never look like "10.0"; bools are "0"/"1";
# an unset value is the empty string, which the decoder maps back to its own default.


def fmt_bool(value: bool) -> str:
    return "1" if value else "0"


def fmt_float(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))
