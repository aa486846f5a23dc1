"""TWS API socket framing, the handshake, and how single fields are written.

Every message after the handshake is a 4-byte big-endian length followed by NUL-terminated
fields. The client opens with ``API\\0`` and one framed payload ``v<min>..<max>[ <options>]``
(not NUL-terminated); the server answers with exactly two fields, the negotiated version and a
connection time (ib_insync refuses any other count). Versions 176 to 178 are implemented (the
layouts that differ between them are handled by the encoders in ``ibsim.messages``); an older
client is refused with an explicit error right after its startApi.
"""

from __future__ import annotations

import asyncio
import math
import re
import struct
from dataclasses import dataclass

API_PREFIX = b"API\0"
MIN_SERVED = 176  # the oldest layout ibsim encodes; older clients are refused explicitly
MAX_VERSION = 178  # the highest layout ibsim encodes (ib_async 2.1.0 offers 157..178)
MAX_FRAME = 16 * 1024 * 1024  # a real client never sends more; a bigger length is garbage

# IB's "unset" sentinels as the Java gateway prints them (Integer.MAX_VALUE, Double.MAX_VALUE).
UNSET_INT = "2147483647"
UNSET_DOUBLE = "1.7976931348623157E308"

_HANDSHAKE = re.compile(rb"^v(\d+)(?:\.\.(\d+))?(?: (.*))?$", re.DOTALL)
_LENGTH = struct.Struct(">I")


class ProtocolError(Exception):
    """The peer sent bytes that are not the TWS API protocol; the connection is closed."""


@dataclass(frozen=True)
class Hello:
    """The client's opening offer: supported version range and connect options."""

    min_version: int
    max_version: int
    options: str = ""


def frame(fields: list[str]) -> bytes:
    """Encode already-formatted fields as one length-prefixed message.

    Args:
        fields: the message's fields, message id first, each a string.

    Returns:
        The bytes to write to the socket.
    """
    payload = "".join(f"{f}\0" for f in fields).encode()
    return _LENGTH.pack(len(payload)) + payload


def split_fields(payload: bytes) -> list[str]:
    """Split a message payload into fields (the trailing empty string dropped)."""
    text = payload.decode(errors="backslashreplace")
    if not text.endswith("\0"):
        raise ProtocolError("message does not end with a NUL")
    return text.split("\0")[:-1]


async def read_payload(reader: asyncio.StreamReader) -> bytes:
    """Read one length-prefixed payload; raises ``asyncio.IncompleteReadError`` at EOF."""
    (length,) = _LENGTH.unpack(await reader.readexactly(4))
    if length > MAX_FRAME:
        raise ProtocolError(f"frame of {length} bytes")
    return await reader.readexactly(length)


async def read_hello(reader: asyncio.StreamReader) -> Hello:
    """Read the ``API\\0`` prefix and the version offer that follows it."""
    if await reader.readexactly(len(API_PREFIX)) != API_PREFIX:
        raise ProtocolError("missing API prefix")
    return parse_hello(await read_payload(reader))


def parse_hello(payload: bytes) -> Hello:
    """Parse ``v157..178 +PACEAPI`` (a single ``v176`` is accepted too, like the Java client)."""
    match = _HANDSHAKE.match(payload.rstrip(b"\0"))
    if not match:
        raise ProtocolError(f"bad version offer {payload[:40]!r}")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if low > high:
        raise ProtocolError(f"empty version range {low}..{high}")
    return Hello(low, high, (match.group(3) or b"").decode(errors="replace").strip())


def negotiate(hello: Hello) -> int:
    """The version to answer: the client's maximum, capped at what ibsim encodes.

    A maximum below :data:`MIN_SERVED` is answered as it is, so that the client can read the
    refusal that follows its startApi (see ``Session``); a minimum above :data:`MAX_VERSION`
    gets 178, which the client library itself then refuses.
    """
    return min(hello.max_version, MAX_VERSION)


def served(version: int) -> bool:
    """Whether ibsim has the message layouts of this negotiated version."""
    return MIN_SERVED <= version <= MAX_VERSION


def handshake_reply(version: int, connection_time: str) -> bytes:
    """The server's answer: exactly two fields, version and connection time."""
    return frame([str(version), connection_time])


# --- field formatting -------------------------------------------------------------------------


def fmt_int(value: int | None) -> str:
    """An int field; ``None`` is IB's unset integer."""
    return UNSET_INT if value is None else str(int(value))


def fmt_bool(value: bool) -> str:
    return "1" if value else "0"


def fmt_float(value: float | None) -> str:
    """A double field as Java prints it (``0.0``, ``412.5``); ``None`` is IB's unset double."""
    if value is None or math.isinf(value) or value >= 1.7976931348623157e308:
        return UNSET_DOUBLE
    if value == int(value) and abs(value) < 1e7:
        return f"{value:.1f}"
    return repr(float(value))


def fmt_optional_float(value: float | None) -> str:
    """A double that the gateway leaves empty when unset (request echoes, prices of MKT)."""
    return "" if value is None else fmt_float(value)


def fmt_decimal(value: float | None) -> str:
    """A size field (IB's Decimal since v163): ``100`` not ``100.0``; empty when unset."""
    if value is None:
        return ""
    if value == int(value):
        return str(int(value))
    return repr(float(value))


def fmt_multiplier(value: float) -> str:
    """Contract multiplier as the gateway sends it: empty for 1 (stocks, FX), else ``5``."""
    if value in (0, 1):
        return ""
    return fmt_decimal(value)
