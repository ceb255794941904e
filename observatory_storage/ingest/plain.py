"""Values as a person reads them in an error message: never a Python repr.

``Decimal('0.00023')`` reads ``0.00023``, a datetime its ISO-8601 text, bytes (a file's
first bytes) the printable characters with the others as ``\\xNN`` in double quotes
(``"PAR1\\x15\\x04"``), a string its text in double quotes, None ``null``.
"""

from __future__ import annotations

import datetime as dt
import decimal


def plain(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, bytes | bytearray | memoryview):
        return '"' + "".join(_byte(b) for b in bytes(value)) + '"'
    if isinstance(value, str):
        return '"' + "".join(_char(c) for c in value) + '"'
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _byte(b: int) -> str:
    return chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\x{b:02x}"


def _char(c: str) -> str:
    if c in '"\\':
        return "\\" + c
    return c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
