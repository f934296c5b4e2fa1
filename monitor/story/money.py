"""Amounts of money named in a text ("$5 billion", "€200m", "1.2 bn"), in rough US dollars.

Shared by the impact rubric (penalties, sales at stake) and custom impact signals; only the
order of magnitude matters, so currencies are converted at rough rates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_MAG = r"trillion|tn|billion|bln|bn|b|million|mln|mn|m|thousand|k"
_CODES = ("usd", "eur", "gbp", "cny", "rmb", "jpy")
_WORDS = ("dollars", "euros", "pounds", "yuan", "renminbi", "yen")
# Three expressions, each starting with something ``re`` can scan for quickly, each run
# only when a cheap substring test says the text could hold such an amount. All run on
# lower-cased text. Symbol prefixes (US$, HK$) are read from the characters before.
_BY_SYMBOL = re.compile(rf"[$€£¥]\s?(?P<num>{_NUM})(?:\s?(?P<mag>{_MAG}))?(?!\w)")
_BY_CODE = re.compile(
    rf"(?<!\w)(?P<cur>{'|'.join(_CODES)})\s?(?P<num>{_NUM})(?:\s?(?P<mag>{_MAG}))?(?!\w)"
)
_BY_WORD = re.compile(
    rf"(?<![\w.,])(?P<num>{_NUM})\s?(?:(?P<mag>{_MAG})\s+(?P<cur>{'|'.join(_WORDS)})|(?P<abbr>bn|mn|tn))(?!\w)"
)
_ABBREVIATED = re.compile(r"\d\s?[bmt]n(?!\w)")
_SYMBOL_PREFIX = re.compile(r"(?<!\w)(us|hk|c|a)$")
_MAGNITUDE = {
    "k": 1e3,
    "thousand": 1e3,
    "m": 1e6,
    "mn": 1e6,
    "mln": 1e6,
    "million": 1e6,
    "b": 1e9,
    "bn": 1e9,
    "bln": 1e9,
    "billion": 1e9,
    "tn": 1e12,
    "trillion": 1e12,
}
# Rough rates: only the order of magnitude matters here. "¥" is read as yuan, the
# commoner currency in this topic (yen amounts are then overstated, never missed).
_TO_USD = {
    "$": 1.0,
    "us$": 1.0,
    "usd": 1.0,
    "dollars": 1.0,
    "c$": 0.73,
    "a$": 0.65,
    "hk$": 0.13,
    "€": 1.1,
    "eur": 1.1,
    "euros": 1.1,
    "£": 1.25,
    "gbp": 1.25,
    "pounds": 1.25,
    "¥": 0.14,
    "cny": 0.14,
    "rmb": 0.14,
    "yuan": 0.14,
    "renminbi": 0.14,
    "jpy": 0.007,
    "yen": 0.007,
}
_MONEY_POINTS = ((1e9, 2.0), (1e8, 1.5), (1e7, 1.0), (1e6, 0.5))


@dataclass(frozen=True, slots=True)
class Money:
    text: str  # as written: "$5 billion"
    usd: float  # rough value in US dollars


def money_amounts(text: str) -> tuple[Money, ...]:
    """Amounts of money named in the text, e.g. "$5 billion", "€200m", "1.2 bn"."""
    low = text.lower()
    if len(low) != len(text):  # rare: lower-casing changed offsets; amounts are ASCII anyway
        low = "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in text)
    found: list[tuple[int, int, Money]] = []
    if any(s in low for s in "$€£¥"):
        found += [
            (m.start(), m.end(), _symbol_money(m, low, text)) for m in _BY_SYMBOL.finditer(low)
        ]
    if any(c in low for c in _CODES):
        found += [
            (m.start(), m.end(), _money_of(m, m.group("cur"), text)) for m in _BY_CODE.finditer(low)
        ]
    if any(w in low for w in _WORDS) or _ABBREVIATED.search(low):
        found += [
            (m.start(), m.end(), _money_of(m, m.group("cur") or "$", text))
            for m in _BY_WORD.finditer(low)
        ]
    kept: list[Money] = []
    end = -1
    for start, stop, money in sorted(found, key=lambda f: (f[0], -f[1])):
        if start >= end:  # "USD 5bn" is one amount, not "USD 5bn" and "5bn"
            kept.append(money)
            end = stop
    return tuple(kept)


def _symbol_money(m: re.Match[str], low: str, text: str) -> Money:
    prefix = _SYMBOL_PREFIX.search(low, max(0, m.start() - 3), m.start())
    symbol = m.group()[0]
    if prefix and symbol == "$":
        return _money_of(m, prefix.group(1) + "$", text, start=prefix.start())
    return _money_of(m, symbol, text)


def _money_of(m: re.Match[str], currency: str, text: str, start: int | None = None) -> Money:
    mag = m.group("mag") or (m.groupdict().get("abbr") or "")
    value = float(m.group("num").replace(",", "")) * _MAGNITUDE.get(mag, 1.0)
    return Money(
        text[start if start is not None else m.start() : m.end()].strip(),
        value * _TO_USD.get(currency, 1.0),
    )


def largest(text: str) -> Money | None:
    return max(money_amounts(text), key=lambda m: m.usd, default=None)


def money_points(usd: float) -> float:
    return next((points for floor, points in _MONEY_POINTS if usd >= floor), 0.0)
