"""Impact 1–10 of an export-control development, the way an analyst rates it.

The scale is the analyst's rubric (``../shared/corpus/README.md``):

- 9–10 a binding new rule or control with broad effect (advanced computing, chipmaking
  equipment, high-bandwidth memory, the foreign direct product rules) taking effect now;
- 7–8 Entity List additions of major firms, a licence requirement hitting a named major
  product, penalties of $100M or more, allies' aligned controls, China's controls on the
  materials chips are made of;
- 5–6 clarifications and corrections, proposed rules, smaller penalties and list additions,
  allies' controls taking effect or widened, other countermeasures;
- 3–4 hearings, letters, reports, investigations;
- 1–2 commentary.

So the score is not a sum of keywords: it says *what kind of action* the development is,
*who* took it (the United States, an ally, China) and how big it is (money, how many
entities), and the reasons say so in words ("Entity List additions (36 entities)",
"licence requirement on a named product: Nvidia; $400 million at stake"). How many outlets
ran a story never raises it. The headlines decide the kind of action (every report of a
development names it there); the leads add the detail (amounts, counts, named products).
A softening kind (a clarification, a proposal, a hearing, a control merely taking effect,
commentary) counts when most headlines carry it: one law firm calling a rule "revised" does
not make the rule a clarification.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.config.terms import compile_terms
from monitor.models import Article, Impact
from monitor.story.money import Money, money_amounts

MAX_ARTICLES = 50  # reports of one development read (10,000 reprints add nothing)
LEAD_CHARS = 600  # of a report without a summary, this much of the text is its lead


# -- what a headline can say --------------------------------------------------------------

RULE = ("interim final rule*", "final rule*", "rule", "rules", "regulation*", "export control*",
        "controls", "restriction*", "curbs")
# What makes a rule broad: whole classes of chips, tools and the rules that reach abroad.
BROAD_SCOPE = ("advanced computing", "semiconductor manufacturing", "chipmaking equipment",
               "chip-making equipment", "semiconductor equipment", "supercomput*",
               "foreign direct product*", "foreign-produced direct product*", "HBM",
               "high-bandwidth memory", "model weights",
               "AI diffusion", "quantum", "advanced technologies", "advanced semiconductor*")
ENTITY_LIST = ("Entity List*", "entity listing", "blacklist*", "Unverified List",
               "Military End User List")
LICENCE = ("licence requirement*", "license requirement*", "licence*", "license*", "halt*",
           "orders", "ordered", "stop* sell*", "stop* shipping", "ban on sales", "revok*",
           "sanctions on", "blocks", "bars", "not to sell", "cut off")
NAMED_PRODUCTS = ("Nvidia", "AMD", "Intel", "Qualcomm", "Huawei", "TSMC", "Samsung", "SK Hynix",
                  "Micron", "ASML", "Applied Materials", "Lam Research", "KLA", "Tokyo Electron",
                  "A100", "H100", "H20", "H800", "A800", "MI309", "Ascend", "Gaudi")
PENALTY = ("penalt*", "fine", "fines", "fined", "settle*", "pleads guilty", "pleaded guilty",
           "civil penalty", "forfeit*")
CRIMINAL = ("smuggl*", "indict*", "charged", "arrest*", "convicted", "sentenced")
MATERIALS = ("gallium", "germanium", "antimony", "graphite", "rare earth*", "critical mineral*",
             "critical metal*", "superhard", "tungsten", "minerals", "raw materials", "metals")
CONTROL = ("restrict*", "control*", "licence*", "license*", "ban", "bans", "banned",
           "curb*", "embargo*", "prohibit*", "bars", "barred", "blacklist*")
# Softening kinds: they count when most headlines carry them.
CLARIFICATION = ("clarif*", "correct*", "revis*", "technical amendment*", "guidance", "FAQ*",
                 "fixes", "refines")
PROPOSAL = ("proposed rule*", "propos*", "request for comment*", "seeks comment*",
            "white paper", "consultation")
INQUIRY = ("probe*", "investigat*", "review*", "hearing*", "testif*", "testimony", "letter*",
           "report", "inquiry", "questions", "asking questions", "audit")
TAKING_EFFECT = ("take effect", "takes effect", "took effect", "begin", "begins", "in force",
                 "expand*", "extend*", "steps up", "step up", "widen*", "tighten* further")
COMMENTARY = ("opinion", "op-ed", "column", "editorial", "commentary", "analysis", "podcast",
              "explainer", "what to know", "fallacy", "lessons", "the case for", "perspective",
              "interview")
# A headline that asks, or explains how or why, is commentary too.
_QUESTION = re.compile(r"^\s*(?:how|why|what|is|are|can|could|should|will|does|do)\b|\?\s*$", re.IGNORECASE)

# Who acts: the first actor a headline names as its subject.
# Word edges by look-around, not \b: "U.S." ends in a full stop.
_US = re.compile(
    r"(?<!\w)(?:U\.S\.|US|USA|United States|Washington|White House|Biden|Trump|BIS|Bureau of Industry"
    r"|(?:U\.S\. |US )?Commerce Department|Department of Commerce|^Commerce|Federal Register|Treasury"
    r"|Justice Department|DOJ|American)(?!\w)"
)
_CHINA = re.compile(r"(?<!\w)(?:China|Chinese|Beijing|MOFCOM|PRC)(?!\w)")
_ALLY = re.compile(
    r"(?<!\w)(?:Netherlands|Dutch|Holland|Japan|Japanese|Tokyo|Taiwan|Taiwanese|South Korea|Korean"
    r"|Seoul|EU|European Union|European Commission|Europe|Brussels|UK|Britain|British|Germany"
    r"|German|Malaysia|Singapore|India|Canada|Australia)(?!\w)"
)
# A mention is the subject unless it is the object of a preposition or a possessive
# ("exports to China", "China's top server maker", "after US embargo").
_NOT_SUBJECT = re.compile(
    r"(?:\b(?:to|on|against|for|from|over|after|amid|with|by|in|into|targeting|of|versus|vs)\s+(?:the\s+)?$)",
    re.IGNORECASE,
)
# What follows a possessive actor: its controls or its government ("Japan's export curbs").
_ACTING = re.compile(
    r"\s+(?:\w+\s+){0,2}?(?:export|curbs?|controls?|restrictions?|bans?|rules?|government|ministry"
    r"|cabinet|regulators?|authorities|response|countermeasures?|retaliation)\b",
    re.IGNORECASE,
)
_ENTITY_COUNT = re.compile(
    r"\b(\d{1,4})\s+(?:(?:new|more|mostly|further|additional|[A-Z][\w-]*|[a-z]+-?[a-z]*)\s+){0,3}?"
    r"(?:entities|companies|firms|entries|organi[sz]ations|parties|chip firms|chipmakers)\b"
)
_DOZENS = re.compile(r"\b(?:dozens|scores|hundreds) of\b", re.IGNORECASE)


# Kinds of action whose developments form one ongoing story by kind alone (the US chip
# rules, the Entity List, enforcement, allies' controls, China's controls); the others
# (a licence on one company's product, an inquiry) are a story only with a shared name.
SERIES_KINDS = frozenset({"us:rule", "us:entity-list", "us:penalty", "ally:control", "china:control"})
COMMENTARY_KIND = "commentary"


@dataclass(frozen=True, slots=True)
class Rating:
    """The impact of a development and the kind of action it reports ("us:rule")."""

    impact: Impact
    kind: str


@dataclass(frozen=True, slots=True)
class _Read:
    """What the reports of one development say, counted by headline."""

    headlines: tuple[str, ...]
    leads: tuple[str, ...]

    def commentary_share(self) -> float:
        matcher = compile_terms(COMMENTARY)
        hits = sum(1 for h in self.headlines if matcher.found(h) or _QUESTION.search(h))
        return hits / max(1, len(self.headlines))

    def share(self, terms: Sequence[str]) -> float:
        """Share of headlines that carry one of the terms."""
        matcher = compile_terms(terms)
        return sum(1 for h in self.headlines if matcher.found(h)) / max(1, len(self.headlines))

    def found(self, terms: Sequence[str], *, leads: bool = True) -> list[str]:
        """The terms' matches as written, headlines first, then leads."""
        matcher = compile_terms(terms)
        texts = self.headlines + (self.leads if leads else ())
        seen: dict[str, None] = {}
        for text in texts:
            for hit in matcher.find(text):
                seen.setdefault(hit.matched, None)
        return list(seen)

    def share_both(self, first: Sequence[str], second: Sequence[str]) -> float:
        """Share of headlines that carry a term of each list."""
        a, b = compile_terms(first), compile_terms(second)
        return sum(1 for h in self.headlines if a.found(h) and b.found(h)) / max(1, len(self.headlines))

    def both(self, first: Sequence[str], second: Sequence[str], *, leads: bool = True) -> list[str]:
        """Matches of ``second`` in texts that also carry one of ``first``."""
        a, b = compile_terms(first), compile_terms(second)
        texts = self.headlines + (self.leads if leads else ())
        seen: dict[str, None] = {}
        for text in texts:
            if a.found(text):
                for hit in b.find(text):
                    seen.setdefault(hit.matched, None)
        return list(seen)


def rate(articles: Sequence[Article]) -> Rating:
    """The impact of a development from its reports (level and reasons) and its kind."""
    chosen = sorted(articles, key=lambda a: a.published)[:MAX_ARTICLES]
    read = _Read(
        tuple(a.title or "" for a in chosen),
        tuple(a.summary or (a.text or "")[:LEAD_CHARS] for a in chosen),
    )
    if not any(read.headlines):
        return Rating(Impact(1, ()), "")
    if read.commentary_share() > 0.5:
        return Rating(Impact(2, ("commentary, not a new development",)), COMMENTARY_KIND)
    actor = dominant_actor(read.headlines)
    if actor == "china":
        level, reasons, kind = _china(read)
    elif actor == "ally":
        level, reasons, kind = _ally(read)
    else:
        level, reasons, kind = _united_states(read)
    return Rating(Impact(max(1, min(10, level)), tuple(reasons)), kind)


def dominant_actor(headlines: Sequence[str]) -> str:
    """"us", "china" or "ally": who most headlines name first as the one acting."""
    votes: Counter[str] = Counter()
    for headline in headlines:
        actor = _headline_actor(headline)
        if actor:
            votes[actor] += 1
    if not votes:
        return "us"  # the beat's default: most controls are American
    best = max(votes.values())
    # A tie goes to the United States, whose rules most others answer.
    return next(a for a in ("us", "ally", "china") if votes[a] == best)


def _headline_actor(headline: str) -> str:
    mentions: list[tuple[int, str]] = []
    for actor, pattern in (("us", _US), ("china", _CHINA), ("ally", _ALLY)):
        for m in pattern.finditer(headline):
            if headline[m.end() : m.end() + 2] in ("'s", "’s") and not _ACTING.match(headline, m.end() + 2):
                continue  # "China's top server maker" is the target; "Japan's export curbs" act
            if _NOT_SUBJECT.search(headline[: m.start()]):
                continue
            mentions.append((m.start(), actor))
            break
    return min(mentions)[1] if mentions else ""


# -- the three actors -----------------------------------------------------------------------


def _united_states(read: _Read) -> tuple[int, list[str], str]:
    """The kind of action most headlines describe decides; its size sets the level."""
    kinds: list[tuple[float, int, str, str]] = []  # (headline share, level, reason, kind)
    broad = read.both(RULE, BROAD_SCOPE, leads=False)
    if broad:
        kinds.append((read.share_both(RULE, BROAD_SCOPE), 9, f"binding rule with broad effect: {_list(broad)}", "us:rule"))
    if read.found(ENTITY_LIST, leads=False):
        count = entity_count(read)
        level = 8 if count >= 25 else 6 if 0 < count <= 5 else 7
        size = f" ({count} entities)" if count else ""
        kinds.append((read.share(ENTITY_LIST), level, f"Entity List additions{size}", "us:entity-list"))
    products = read.both(LICENCE, NAMED_PRODUCTS)
    if products and (read.found(LICENCE, leads=False) or read.found(NAMED_PRODUCTS, leads=False)):
        share = max(read.share(LICENCE), read.share(NAMED_PRODUCTS))
        level, reason = 7, f"licence requirement or stop order on a named product: {_list(products)}"
        money = usual_amount(read)
        if money is not None and money.usd >= 1e8:
            level, reason = 8, f"{reason}; {money.text} at stake"
        kinds.append((share, level, reason, "us:licence"))
    if read.found(PENALTY, leads=False):
        kinds.append((read.share(PENALTY), *_penalty(read), "us:penalty"))
    if read.found(CRIMINAL, leads=False):
        kinds.append((read.share(CRIMINAL), 6, f"criminal enforcement: {_list(read.found(CRIMINAL, leads=False))}", "us:criminal"))
    if not kinds and read.found(CONTROL):
        kinds.append((0.0, 6, f"new control: {_list(read.found(CONTROL, leads=False) or read.found(CONTROL))}", "us:control"))
    if not kinds:
        return _soften(read, 3, ["no control, list, licence or penalty named"], "us:other")
    _, level, reason, kind = max(kinds)
    return _soften(read, level, [reason], kind)


def _ally(read: _Read) -> tuple[int, list[str], str]:
    who = _list(_ALLY_NAMES(read))
    level, reasons = 7, [f"allied control aligned with the US: {who}" if who else "allied control"]
    if read.share(TAKING_EFFECT) > 0.5:
        level, reasons = 6, [f"allied control taking effect or widened: {who}" if who else "allied control widened"]
    return _soften(read, level, reasons, "ally:control")


def _china(read: _Read) -> tuple[int, list[str], str]:
    materials = read.both(CONTROL, MATERIALS)
    if materials:
        level, reasons = 7, [f"China's countermeasure: export controls on {_list(materials)}"]
    elif read.found(CONTROL):
        level, reasons = 6, [f"China's countermeasure: {_list(read.found(CONTROL, leads=False) or read.found(CONTROL))}"]
    else:
        return _soften(read, 4, ["China's response short of a control"], "china:inquiry")
    return _soften(read, level, reasons, "china:control")


def _soften(read: _Read, level: int, reasons: list[str], kind: str) -> tuple[int, list[str], str]:
    """Clarifications, proposals and inquiries that most headlines name cap the level; an
    inquiry is its own kind (no action yet), a clarification belongs to what it clarifies."""
    for terms, cap, why, softer in (
        (CLARIFICATION, 5, "clarifies or corrects earlier rules", kind),
        (PROPOSAL, 5, "a proposal, not yet binding", kind),
        (INQUIRY, 4, "an inquiry, hearing or report, no action yet", kind.split(":")[0] + ":inquiry"),
    ):
        if level > cap and read.share(terms) > 0.5:
            return cap, [why, *reasons], softer
    return level, reasons, kind


def _penalty(read: _Read) -> tuple[int, str]:
    money = usual_amount(read)
    if money is None:
        return 5, "penalty"
    level = 9 if money.usd >= 1e9 else 8 if money.usd >= 1e8 else 6 if money.usd >= 1e7 else 5
    return level, f"penalty of {money.text}"


def usual_amount(read: _Read) -> Money | None:
    """The amount most reports name (a penalty, the sales at stake), the larger on a tie:
    one report's "$1.1 billion of hard drives shipped" is not the $300 million penalty
    the others report."""
    named: Counter[float] = Counter()
    text_of: dict[float, str] = {}
    for text in zip(read.headlines, read.leads, strict=True):
        amounts = {round(m.usd, -3): m.text for t in text for m in money_amounts(t)}
        named.update(amounts.keys())
        for usd, written in amounts.items():
            text_of.setdefault(usd, written)
    if not named:
        return None
    usd = max(named, key=lambda v: (named[v], v))
    return Money(text_of[usd], usd)


def entity_count(read: _Read) -> int:
    """The largest number of entities, companies or firms the reports say were listed."""
    counts = [int(m.group(1)) for text in read.headlines + read.leads for m in _ENTITY_COUNT.finditer(text)]
    if not counts and any(_DOZENS.search(text) for text in read.headlines):
        return 30
    return max((c for c in counts if c < 2000), default=0)


def _ALLY_NAMES(read: _Read) -> list[str]:  # noqa: N802 - reads like a constant lookup
    names: dict[str, None] = {}
    for headline in read.headlines:
        for m in _ALLY.finditer(headline):
            names.setdefault(_ALLY_LABEL.get(m.group(), m.group()), None)
    return list(names)


_ALLY_LABEL = {"Dutch": "Netherlands", "Holland": "Netherlands", "Japanese": "Japan", "Tokyo": "Japan",
               "Taiwanese": "Taiwan", "Korean": "South Korea", "Seoul": "South Korea", "British": "UK",
               "Britain": "UK", "German": "Germany", "Brussels": "EU", "European Union": "EU",
               "European Commission": "EU", "Europe": "EU"}


def _list(found: Sequence[str], limit: int = 3) -> str:
    folded: dict[str, str] = {}
    for item in found:
        folded.setdefault(item.casefold(), item)
    items = list(folded.values())[:limit]
    return ", ".join(items)
