"""Sources with every inherited value filled in: what the fetcher and the scheduler use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from monitor.config.addresses import PUBLIC_ONLY, AddressPolicy
from monitor.config.settings import Selectors, Settings, Source


@dataclass(frozen=True)
class EffectiveSource:
    """A source with every inherited value filled in (what the fetcher and scheduler use)."""

    id: str
    name: str
    url: str
    kind: Literal["feed", "page"]
    outlet: str
    owner: str
    tier: str
    interval: timedelta
    jitter: timedelta
    selectors: Selectors | None
    topics: tuple[str, ...] | None
    enabled: bool
    addresses: AddressPolicy = PUBLIC_ONLY  # where its requests may connect (sources[].allow_*)
    max_items: int = 500  # items read per poll, the newest


def effective_source(settings: Settings, source: Source) -> EffectiveSource:
    defaults = settings.defaults
    return EffectiveSource(
        id=source.id,
        name=source.name,
        url=source.url,
        kind=source.kind,
        outlet=source.outlet or source.name,
        owner=source.owner or "",
        tier=source.tier or defaults.tier,
        interval=source.interval if source.interval is not None else defaults.interval,
        jitter=defaults.jitter,
        selectors=source.selectors,
        topics=source.topics,
        enabled=defaults.enabled if source.enabled is None else source.enabled,
        addresses=AddressPolicy.for_source(source.allow_private, source.allow_networks),
        max_items=source.max_items if source.max_items is not None else defaults.max_items,
    )


def effective_sources(
    settings: Settings, *, include_disabled: bool = False
) -> list[EffectiveSource]:
    """Enabled sources (or all of them), in file order."""
    every = (effective_source(settings, source) for source in settings.sources)
    return [source for source in every if source.enabled or include_disabled]
