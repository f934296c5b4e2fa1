"""Feed dates, read strictly: RFC 822/2822 (RSS) and RFC 3339 (Atom, JSON Feed).

A date is either understood — then it is an aware UTC datetime — or it is not, and the
caller gets a sentence saying why ("unparseable date 'Tuesday'"), never a guess: no fuzzy
parsing ("Tuesday" is not next Tuesday, "May 2017" is not today's day of May 2017), no
silent UTC for a time zone we do not know, no exception for a year 0 or 10000. What RFC 822
allows is accepted: a leap second (23:59:60, read as 23:59:59), two-digit years (RFC 2822's
rule: 00-49 → 20xx, 50-99 → 19xx), the named zones of RFC 822, and the few unambiguous zone
names feeds commonly use (CET, BST, JST...).

Pure and bounded: the text is cut to 200 characters before anything looks at it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_tz
from typing import NamedTuple

MAX_DATE_CHARS = 200

# RFC 822's zones plus common unambiguous ones; IST, CST-as-China and the like are not here.
ZONES = {
    "UT": 0, "UTC": 0, "GMT": 0, "Z": 0,
    "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
    "AST": -4, "ADT": -3, "AKST": -9, "AKDT": -8, "HST": -10,
    "WET": 0, "WEST": 1, "BST": 1, "CET": 1, "CEST": 2, "MET": 1, "MEST": 2, "EET": 2,
    "EEST": 3, "MSK": 3, "JST": 9, "KST": 9, "HKT": 8, "SGT": 8, "AWST": 8, "ACST": 9.5,
    "ACDT": 10.5, "AEST": 10, "AEDT": 11, "NZST": 12, "NZDT": 13,
}  # fmt: skip
_RFC822 = re.compile(
    r"^(?:[A-Za-z]{2,9}\.?,?\s*)?(\d{1,2})\s+([A-Za-z]{3,9})\.?\s+(\d{2}|\d{4})\s+"
    r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(?:([+-]\d{2}:?\d{2})|([A-Za-z]{1,5}))?(?:\s*\([^)]*\))?$"
)
_MONTHS = frozenset(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))
_ISO_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?(?:[Zz]|[+-]\d{2}:?\d{2})?$")


class DateReading(NamedTuple):
    value: datetime | None  # UTC, when understood
    problem: str  # why not ("" when understood, or when there was no date at all)
    shaped: bool  # the text has the shape of an RFC 822 or RFC 3339 date (even if refused)


def parse_date(text: str) -> DateReading:
    """Read one feed date strictly; see the module docstring."""
    text = " ".join(text[:MAX_DATE_CHARS].split())
    if not text:
        return DateReading(None, "", False)
    shown = repr(text[:80])
    match = _RFC822.match(text)
    if match is not None and match.group(2)[:3].lower() in _MONTHS:
        return DateReading(*_rfc822(text, match, shown), True)
    if _ISO_SHAPE.match(text):
        return DateReading(*_rfc3339(text, shown), True)
    return DateReading(None, f"unparseable date {shown}", False)


def zone_offset(name: str) -> float | None:
    """Hours east of UTC of a zone name we know unambiguously, else None."""
    return ZONES.get(name.upper())


def _rfc822(text: str, match: re.Match[str], shown: str) -> tuple[datetime | None, str]:
    zone_name = match.group(8)
    offset_hours: float | None = None
    if zone_name is not None:
        offset_hours = ZONES.get(zone_name.upper())
        if offset_hours is None:
            return None, f"unparseable date {shown} (unknown time zone {zone_name})"
        text = text[: match.start(8)] + _numeric_zone(offset_hours) + text[match.end(8) :]
    if match.group(6) == "60":  # a leap second, which RFC 822 allows and datetime does not
        text = text[: match.start(6)] + "59" + text[match.end(6) :]
    parts = parsedate_tz(text)
    if parts is None:
        return None, f"unparseable date {shown}"
    try:
        local = datetime(*parts[:6], tzinfo=UTC)  # type: ignore[misc]
        return local - timedelta(seconds=parts[9] or 0), ""
    except (ValueError, OverflowError):
        return None, f"unparseable date {shown} (out of range)"


def _numeric_zone(hours: float) -> str:
    minutes = round(hours * 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


def _rfc3339(text: str, shown: str) -> tuple[datetime | None, str]:
    try:
        value = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None, f"unparseable date {shown}"
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC), ""  # no zone: taken as UTC, as before
    try:
        return value.astimezone(UTC), ""
    except (ValueError, OverflowError):  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        return None, f"unparseable date {shown} (out of range)"
