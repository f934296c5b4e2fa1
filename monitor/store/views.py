"""Read models: a development with everything needed to show it (alerts, digests, status)."""

from __future__ import annotations

from sqlalchemy import Connection

from monitor.config.settings import DEFAULT_MIN_SOURCES, Settings
from monitor.models import DevelopmentView
from monitor.store import articles, developments
from monitor.story import corroborate, timeline


def load_view(
    conn: Connection, development_id: int, settings: Settings | None = None
) -> DevelopmentView | None:
    """The development as it stands now: its articles, the corroboration decision (as the
    pipeline stored it), its timeline."""
    development = developments.get_development(conn, development_id)
    if development is None:
        return None
    members = articles.articles_for_development(conn, development_id)
    decision = development.decision
    if decision is None:  # a row stored before the decision was kept with it
        required = settings.min_sources(development.topic) if settings else DEFAULT_MIN_SOURCES
        decision = corroborate.corroborate(members, required)
    earlier = (
        developments.storyline(conn, development.storyline_id, before=development.first_seen)
        if development.storyline_id is not None
        else []
    )
    return DevelopmentView(
        development=development,
        decision=decision,
        articles=tuple(members),
        timeline=timeline.timeline_entries(development, earlier),
    )
