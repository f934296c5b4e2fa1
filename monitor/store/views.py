"""Read models: a development with everything needed to show it (alerts, digests, status)."""

from __future__ import annotations

from sqlalchemy import Connection

from monitor.config.settings import Settings
from monitor.models import DevelopmentView
from monitor.store import articles, developments
from monitor.story import corroborate, timeline


def required_sources(settings: Settings | None, topic_id: str) -> int:
    topic = next((t for t in settings.topics if t.id == topic_id), None) if settings else None
    return topic.min_sources if topic else 2


def load_view(
    conn: Connection, development_id: int, settings: Settings | None = None
) -> DevelopmentView | None:
    """The development as it stands now: its articles, the corroboration decision, its timeline."""
    development = developments.get_development(conn, development_id)
    if development is None:
        return None
    members = articles.articles_for_development(conn, development_id)
    decision = corroborate.corroborate(members, required_sources(settings, development.topic))
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
