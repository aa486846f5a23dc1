"""Row values for the BigQuery fake: insertAll JSON -> checked, typed row -> query result cells.

Checks follow the real ``tabledata.insertAll``: unknown field, missing REQUIRED field, an array
for a non-REPEATED field (and the reverse) and a value that does not convert to the column type
each give one ``insertErrors`` entry with reason ``invalid`` and the field as ``location``.
Accepted spellings: INTEGER as a JSON number or decimal string (JSON numbers lose precision past
2**53); FLOAT as a number or numeric string; BOOLEAN as true/false or "true"/"false"; TIMESTAMP as
RFC 3339 / ``YYYY-MM-DD HH:MM:SS[.ffffff][zone]`` text or seconds since the epoch (number or
string); JSON as a string holding JSON text or the JSON value itself. Where unsure, stricter than
BigQuery: STRING takes only a JSON string. RECORD columns are not supported.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

Row = dict[str, Any]
Column = dict[str, Any]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_INT_TEXT = re.compile(r"[+-]?\d+")


class BadValue(ValueError):
    """A cell value that does not fit its column type."""


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise BadValue(f"Cannot convert value to string: {value!r}")


def _to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        return int(value)
    raise BadValue(f"Cannot convert value to integer (bad value): {value!r}")


def _to_float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    with contextlib.suppress(ValueError):
        if isinstance(value, str):
            return float(value)  # also "NaN" and "Infinity", as BigQuery takes them
    raise BadValue(f"Cannot convert value to floating point (bad value): {value!r}")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BadValue(f"Cannot convert value to boolean: {value!r}")


def _to_timestamp(value: Any) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise BadValue(f"Cannot convert value to timestamp: {value!r}")


def _to_json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise BadValue(f"Cannot convert value to JSON: {value!r}") from None


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "STRING": _to_string,
    "INTEGER": _to_int,
    "INT64": _to_int,
    "FLOAT": _to_float,
    "FLOAT64": _to_float,
    "BOOLEAN": _to_bool,
    "BOOL": _to_bool,
    "TIMESTAMP": _to_timestamp,
    "JSON": _to_json,
}
_TO_TEXT: dict[str, Callable[[Any], str]] = {
    # Query results carry every cell as text; the client asks for int64 microsecond timestamps.
    "TIMESTAMP": lambda v: str((v - _EPOCH) // _MICROSECOND),
    "JSON": lambda v: json.dumps(v, separators=(",", ":")),
    "BOOLEAN": lambda v: "true" if v else "false",
    "BOOL": lambda v: "true" if v else "false",
}


def cell(column: Column, value: Any) -> Any:
    """One stored value as a query result cell (``v``): text, or a list for REPEATED."""
    if value is None:
        return None
    text = _TO_TEXT.get(column["type"].upper(), str)
    if column.get("mode", "NULLABLE").upper() == "REPEATED":
        return [{"v": text(v)} for v in value]
    return text(value)


def _convert(column: Column, value: Any) -> Any:
    name, mode = column["name"], column.get("mode", "NULLABLE").upper()
    convert = CONVERTERS.get(column["type"].upper())
    if convert is None:
        raise BadValue(f"Field {name}: type {column['type']} is not supported by the fake")
    if mode == "REPEATED":
        if value is None:
            return []
        if not isinstance(value, list):
            raise BadValue(f"Repeated field must be imported as a JSON array. Field: {name}.")
        return [convert(v) for v in value]
    if isinstance(value, list) and convert is not _to_json:
        raise BadValue(f"Array specified for non-repeated field: {name}.")
    if value is None:
        if mode == "REQUIRED":
            raise BadValue(f"Missing required field: {name}.")
        return None
    return convert(value)


def check_row(
    schema: list[Column], row: Any, ignore_unknown: bool = False
) -> tuple[Row, list[dict[str, str]]]:
    """Convert one insertAll row; returns (stored row, insertErrors entries for it)."""
    if not isinstance(row, dict):
        return {}, [_row_error("", "Row is not a JSON object.")]
    columns = {c["name"]: c for c in schema}
    unknown = [] if ignore_unknown else [k for k in row if k not in columns]
    errors = [_row_error(k, f"no such field: {k}.") for k in unknown]
    stored: Row = {}
    for name, column in columns.items():
        try:
            stored[name] = _convert(column, row.get(name))
        except BadValue as exc:
            errors.append(_row_error(name, str(exc)))
    return stored, errors


def _row_error(location: str, message: str) -> dict[str, str]:
    return {"reason": "invalid", "location": location, "debugInfo": "", "message": message}
