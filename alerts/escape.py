"""Make feed text safe for Slack: escaping, links we build ourselves, truncation.

Slack's rule is short: in any text field, `&`, `<` and `>` are control characters and must be
sent as `&amp;`, `&lt;`, `&gt;`. Nothing else is escaped, because Slack would show any other
entity literally. Once those three are escaped, no `<!channel>`, `<@U123>`, `<#C123>` or
`<http://evil|Reuters>` from a feed can reach Slack as markup: the only `<` in a message is
one that `link()` wrote around an http(s) URL we checked.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

ELLIPSIS = "…"
# A sentence ends at . ! ? (maybe followed by a quote or bracket) and a space; "U.S." does not end one.
_SENTENCE_END = re.compile(r"(?<!\b[A-Z])(?<!\b[A-Z][a-z])[.!?][\"'”’)\]]?(?=\s)")

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}

# Characters kept as they are when a URL is re-quoted: RFC 3986 reserved + unreserved + "%"
# (existing percent-escapes stay). `|` is missing on purpose: Slack ends the URL at the first
# `|`, so a `|` in a feed URL must become %7C or it would start a forged label.
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~-._"


def escape(text: str) -> str:
    """Escape the three characters Slack treats as markup (`&`, `<`, `>`) and nothing else."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """Shorten plain text to at most `limit` characters, ending with an ellipsis when cut."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS if limit > 1 else ELLIPSIS


def escape_clipped(text: str, limit: int) -> str:
    """Escape `text` and keep the result within `limit` characters.

    Cuts between source characters, never inside an entity (a cut `&am` would show up as a
    stray ampersand), at the end of a word when one ends in the last third of what fits (a
    reader should not meet "presumption of den"), and adds an ellipsis when anything was dropped.
    """
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    if limit <= 0:
        return ""
    budget = limit - len(ELLIPSIS)
    parts: list[str] = []
    used = 0
    for char in text:
        piece = _ESCAPES.get(char, char)
        if used + len(piece) > budget:
            break
        parts.append(piece)
        used += len(piece)
    kept = len(parts)
    if kept < len(text) and not text[kept].isspace():  # the cut falls inside a word
        space = max((i for i in range(kept) if text[i].isspace()), default=-1)
        if space >= kept * 2 // 3:
            parts = parts[:space]
    # Not ";": the kept text may end in an entity such as "&amp;".
    return "".join(parts).rstrip(" \t\n,:–—-") + ELLIPSIS


def sentences(text: str, limit: int) -> str:
    """Whole sentences of plain `text` that fit in `limit` characters (at least one, cut at a
    word with an ellipsis when even the first is longer). Not escaped."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if m.end() <= limit]
    if ends:
        return text[: ends[-1]].rstrip()
    return clip_words(text, limit)


def clip_words(text: str, limit: int) -> str:
    """Plain text within `limit` characters, cut after a whole word, with an ellipsis."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    head = text[: limit - 1]
    space = head.rfind(" ")
    if space >= len(head) * 2 // 3 and not text[limit - 1].isspace():
        head = head[:space]
    return head.rstrip(" \t\n,;:–—-") + ELLIPSIS


def safe_url(url: str) -> str | None:
    """The URL re-quoted for use inside `<...|...>`, or None when it is not a usable http(s) URL."""
    candidate = url.strip()
    if not candidate or any(ord(c) < 0x20 or c.isspace() for c in candidate):
        return None
    try:
        parts = urlsplit(candidate)
    except ValueError:  # e.g. an invalid IPv6 literal
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    # Slack only recognises lower-case schemes as links.
    candidate = parts.scheme.lower() + candidate[len(parts.scheme):]
    # quote() percent-encodes <, >, |, quotes and non-ASCII; only & needs the entity form.
    return quote(candidate, safe=_URL_SAFE).replace("&", "&amp;")


def link(url: str, label: str, *, limit: int = 500) -> str:
    """A Slack link `<url|label>` when `url` is http(s), else just the escaped label.

    The label is escaped; a `|` in it is replaced by a look-alike so it cannot be read as a
    second separator by any client. `limit` bounds the label, not the URL.
    """
    shown = escape_clipped(label.replace("|", "¦"), limit) or escape_clipped(url, limit)
    target = safe_url(url)
    if target is None:
        return shown
    return f"<{target}|{shown or target}>"
