"""Make feed text safe for Slack: escaping, links we build ourselves, truncation.

Slack's rule is short: in any text field, `&`, `<` and `>` are control characters and must be
sent as `&amp;`, `&lt;`, `&gt;`. Nothing else is escaped, because Slack would show any other
entity literally. Once those three are escaped, no `<!channel>`, `<@U123>`, `<#C123>` or
`<http://evil|Reuters>` from a feed can reach Slack as markup: the only `<` in a message is
one that `link()` wrote around an http(s) URL we checked.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

ELLIPSIS = "…"

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
    stray ampersand), and adds an ellipsis when anything was dropped.
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
    return "".join(parts).rstrip() + ELLIPSIS


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
