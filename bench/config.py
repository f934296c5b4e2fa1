"""feeds.yaml files the bench generates for the monitor: the farm's feeds, one topic, a store."""

from __future__ import annotations

from pathlib import Path

import yaml

# Business and markets terms: about a fifth of the UCI headlines match, so the monitor's
# relevance, dedup, clustering and store all get real work on every changed feed.
MARKETS_TERMS = [
    "Fed", "Federal Reserve", "ECB", "central bank", "stocks", "shares", "Wall Street",
    "Dow", "S&P", "Nasdaq", "inflation", "interest rate*", "bond*", "dollar", "euro",
    "earnings", "profit*", "IPO", "merger", "acquisition", "oil", "gold", "yen",
]


def write_config(
    directory: Path,
    urls: list[str],
    *,
    interval: str = "15m",
    jitter: str = "0s",
    concurrency: int = 50,
    per_host: int = 4,
    slack_base_url: str | None = None,
    slack_token: str | None = None,
    channel: str = "alerts",
    outlets: list[str] | None = None,
    topics: list[dict[str, object]] | None = None,
    store_url: str = "sqlite:///monitor.db",
    distributed: dict[str, object] | None = None,
) -> Path:
    """A valid feeds.yaml for `urls` in `directory` (its SQLite store next to it, unless
    `store_url` names another; `distributed` is the distributed mode's section)."""
    directory.mkdir(parents=True, exist_ok=True)
    sources = []
    for i, url in enumerate(urls):
        outlet = outlets[i] if outlets else f"farm-outlet-{i}"
        sources.append({"id": f"f{i:05d}", "name": f"Farm feed {i}", "url": url, "outlet": outlet, "owner": outlet})
    config: dict[str, object] = {
        "defaults": {"interval": interval, "jitter": jitter},
        "http": {
            "concurrency": concurrency,
            "per_host": per_host,
            "user_agent": "exportwatch-monitor-bench/0.1 (+https://github.com/exportwatch/monitor)",
            "allow_private_addresses": True,  # the farm's hosts are 127.x.y.z
        },
        "store": {"url": store_url},
        "sources": sources,
        "topics": topics or [{"id": "markets", "name": "Markets", "rules": {"any": MARKETS_TERMS}, "min_sources": 2}],
    }
    if slack_base_url:
        config["slack"] = {"base_url": slack_base_url, "token": slack_token}
        config["routes"] = [{"topic": str(t["id"]), "channel": channel} for t in config["topics"]]  # type: ignore[index, union-attr]
    if distributed:
        config["distributed"] = distributed
    path = directory / "feeds.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path
