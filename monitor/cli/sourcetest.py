"""`monitor sources test ID`: fetch one source now and show what the monitor would make of it.

Nothing is written to the store: no validators are sent (so the whole feed comes back), and
the items go through parse → normalize → relevance only.
"""

from __future__ import annotations

from typing import TextIO

from monitor.clock import utc_now
from monitor.config.load import ConfigError, ConfigProblem
from monitor.config.settings import Settings
from monitor.config.sources import effective_source
from monitor.ingest import relevance
from monitor.ingest.fetch import Fetcher
from monitor.run.pipeline import read_articles


async def try_source(settings: Settings, source_id: str, *, out: TextIO) -> int:
    source = next((s for s in settings.sources if s.id == source_id), None)
    if source is None:
        known = ", ".join(s.id for s in settings.sources) or "none"
        raise ConfigError(
            [
                ConfigProblem(
                    file="",
                    line=None,
                    key_path="sources",
                    message=f"no source with id {source_id!r} (known: {known})",
                    hint="",
                )
            ]
        )
    eff = effective_source(settings, source)
    async with Fetcher(settings.http) as fetcher:
        result = await fetcher.fetch(eff.id, eff.url, kind=eff.kind, allow=eff.addresses)
    print(f"{eff.id}: GET {eff.url} → {result.status or '-'} in {result.elapsed:.2f}s", file=out)
    if not result.ok:
        print(
            f"  failed ({result.error_kind.value if result.error_kind else 'error'}): {result.error}",
            file=out,
        )
        return 1
    parsed, found = read_articles(eff, result, utc_now())
    for warning in parsed.warnings:
        print(f"  warning: {warning}", file=out)
    compiled = relevance.compile_topics(settings.topics)
    matched = 0
    print(f"  {len(found)} items ({parsed.format})", file=out)
    for article in found:
        topics = relevance.match_topics(article, compiled, allowed_topics=eff.topics)
        matched += bool(topics)
        print(
            f"\n  • {article.title}\n    {article.url}\n    {article.published:%Y-%m-%d %H:%M} UTC · {article.outlet}",
            file=out,
        )
        for match in topics:
            print(f"    ✔ {match.topic_id} (score {match.score:g}): {match.explanation}", file=out)
        if not topics:
            for line in relevance.explain_miss(article, compiled, allowed_topics=eff.topics):
                print(f"    ✘ {line}", file=out)
    print(
        f"\n  {matched} of {len(found)} items match a topic. Nothing was written to the store.",
        file=out,
    )
    return 0
