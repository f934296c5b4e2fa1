"""rss2email 3 set up for the farm: a config with one ``[feed.NAME]`` section per feed.

rss2email reads feeds it does not yet know from its config file (the data file starts empty),
which is how 2,000 feeds are added in one go instead of 2,000 ``r2e add`` calls. Email goes
nowhere: the run uses ``--no-send`` and a dummy address. ``same-server-fetch-interval`` is 0
(its default) and every farm feed has its own host, so rss2email never sleeps.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def prepare(directory: Path, urls: list[str]) -> list[str]:
    """Write config and an empty data file; returns the command for one cycle."""
    directory.mkdir(parents=True, exist_ok=True)
    config, data = directory / "rss2email.cfg", directory / "rss2email.json"
    lines = [
        "[DEFAULT]",
        "to = bench@example.invalid",
        "from = r2e@example.invalid",
        "same-server-fetch-interval = 0",
        "feed-timeout = 60",
        "",
    ]
    for i, url in enumerate(urls):
        lines += [f"[feed.f{i:05d}]", f"url = {url}", ""]
    config.write_text("\n".join(lines), encoding="utf-8")
    data.write_text('{"version": 2, "feeds": []}\n', encoding="utf-8")
    r2e = shutil.which("r2e") or str(Path(__import__("sys").executable).with_name("r2e"))
    return [r2e, "-c", str(config), "-d", str(data), "run", "--no-send"]
