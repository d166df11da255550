"""Dates as hospitals type them: ISO, slashed, unpadded, Chinese, compact and Excel serial numbers.

Accepted: ``2025-05-01``, ``2025/5/1``, ``2025.5.1``, ``2025年5月1日``, ``20250501``, a time after the
date (``2025-05-01 00:00:00``, what Excel and pandas write), an Excel serial day number (``45778``,
1900 date system) and day-first or month-first dates only when the order is unambiguous
(``31/05/2025``); ``05/06/2025`` is refused, because guessing a month would misdate a procedure.

Example::

    >>> from openir.registry.dates import parse_date
    >>> parse_date("2025/5/1"), parse_date("45778")
    (datetime.date(2025, 5, 1), datetime.date(2025, 5, 1))
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

_YMD = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_SERIAL = re.compile(r"^(\d{5})(?:\.0+)?$")
_DMY = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
EXCEL_EPOCH = dt.date(1899, 12, 30)  # serial 1 = 1900-01-01 with Excel's 1900 leap-year bug folded in
SERIAL_RANGE = (18264, 73051)  # 1950-01-01 .. 2099-12-31


def parse_date(value: object) -> dt.date:
    """A date from text, a datetime or an Excel serial; ValueError with a readable reason otherwise."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _serial(float(value), str(value))
    text = unicodedata.normalize("NFKC", str(value)).strip()
    m = _YMD.match(text) or _COMPACT.match(text)
    if m:
        return _make(int(m[1]), int(m[2]), int(m[3]), text)
    m = _SERIAL.match(text)
    if m:
        return _serial(float(m[1]), text)
    m = _DMY.match(text)
    if m:
        a, b, y = int(m[1]), int(m[2]), int(m[3])
        if a > 12 >= b:
            return _make(y, b, a, text)
        if b > 12 >= a:
            return _make(y, a, b, text)
        raise ValueError(f"date {text!r} is ambiguous (day/month order unknown); write it as YYYY-MM-DD")
    raise ValueError(f"date {text!r} not understood; use YYYY-MM-DD (2025-05-01, 2025/5/1 or 2025年5月1日 also work)")


def _make(y: int, m: int, d: int, text: str) -> dt.date:
    try:
        return dt.date(y, m, d)
    except ValueError:
        raise ValueError(f"date {text!r} does not exist") from None


def _serial(n: float, text: str) -> dt.date:
    if not (SERIAL_RANGE[0] <= n <= SERIAL_RANGE[1]) or n != int(n):
        raise ValueError(f"date {text!r} is not a date (as an Excel day number it lies outside 1950-2099)")
    return EXCEL_EPOCH + dt.timedelta(days=int(n))
