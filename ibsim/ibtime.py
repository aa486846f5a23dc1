"""Date-times as IB's API writes them in requests (endDateTime, goodAfterTime, goodTillDate,
the reqExecutions time filter).

Forms the gateway accepts: ``YYYYMMDD-HH:MM:SS`` (UTC), ``YYYYMMDD HH:MM:SS`` (the gateway's
own time zone: ibsim's is UTC, as its connection time says), ``YYYYMMDD HH:MM:SS <zone>`` with
an IANA name (``US/Eastern``) or one of the abbreviations TWS users type (``EST`` means New
York time, daylight saving included), and a bare ``YYYYMMDD``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

GATEWAY_ZONE = UTC
# Abbreviations IB accepts, as the regions they stand for (EST in winter and summer alike).
ZONE_ALIASES = {
    "EST": "US/Eastern", "EDT": "US/Eastern", "CST": "US/Central", "CDT": "US/Central",
    "MST": "US/Mountain", "MDT": "US/Mountain", "PST": "US/Pacific", "PDT": "US/Pacific",
    "GMT": "UTC", "Z": "UTC",
}  # fmt: skip


def parse(text: str, *, end_of_day: bool = False) -> datetime:
    """An aware datetime from one of IB's forms (see the module docstring).

    Args:
        text: the field as the client sent it (not empty).
        end_of_day: a bare date means its last second instead of its first.

    Raises:
        ValueError: not one of those forms, or an unknown time zone.
    """
    text = " ".join(text.split())
    if len(text) >= 17 and text[8] == "-":
        return _strptime(text[:17], "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
    parts = text.split(" ")
    if len(parts) == 1:
        day = _strptime(parts[0], "%Y%m%d").replace(tzinfo=GATEWAY_ZONE)
        return day + timedelta(days=1, seconds=-1) if end_of_day else day
    when = _strptime(f"{parts[0]} {parts[1]}", "%Y%m%d %H:%M:%S")
    return when.replace(tzinfo=zone(parts[2]) if len(parts) > 2 else GATEWAY_ZONE)


def zone(name: str) -> tzinfo:
    """The time zone an IB zone name means.

    Raises:
        ValueError: unknown.
    """
    try:
        return ZoneInfo(ZONE_ALIASES.get(name.upper(), name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _strptime(text: str, fmt: str) -> datetime:
    try:
        return datetime.strptime(text, fmt)
    except ValueError as exc:
        raise ValueError(f"invalid date/time {text!r}") from exc
