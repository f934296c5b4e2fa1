"""The settings in force: loaded from their file, reloaded only when the new file is valid."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from monitor.clock import format_utc, utc_now
from monitor.config.load import ConfigError, load_settings, plural
from monitor.config.settings import Settings

log = logging.getLogger(__name__)


class ConfigHolder:
    """The settings in force, their file and load time; `reload()` swaps only a valid file in.

    Built with a valid file (raises `ConfigError` otherwise). The scheduler calls `reload()` on
    SIGHUP and when `changed_on_disk()` says the file changed.
    """

    def __init__(
        self,
        path: str | Path,
        env: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.path = Path(path)
        self._env = env
        self._clock = clock
        self.settings: Settings = load_settings(self.path, env)
        self.loaded_at: datetime = clock()
        self.last_result: tuple[bool, str] = (True, f"loaded {self.path}")
        self._stamp = self._disk_stamp()

    @classmethod
    def load(cls, path: str | Path, env: Mapping[str, str] | None = None) -> ConfigHolder:
        """Load `path` (raising `ConfigError` when it is invalid) and hold it."""
        return cls(path, env)

    def _disk_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def changed_on_disk(self) -> bool:
        """True when the file's modification time or size differs from the last load attempt."""
        return self._disk_stamp() != self._stamp

    def reload(self) -> tuple[bool, str]:
        """(True, what changed) after loading a valid file; (False, why) keeping the old settings."""
        self._stamp = self._disk_stamp()
        try:
            settings = load_settings(self.path, self._env)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config reload rejected: %s", problem)
            since = format_utc(self.loaded_at, seconds=True)
            message = f"{self.path}: {plural(len(exc.problems), 'problem')}; keeping the settings loaded at {since}"
            self.last_result = (False, message)
            return self.last_result
        if settings == self.settings:
            self.last_result = (True, f"{self.path}: unchanged")
        else:
            message = f"{self.path}: reloaded, {_diff_sources(self.settings, settings)}"
            self.settings, self.loaded_at = settings, self._clock()
            log.info("config %s", message)
            self.last_result = (True, message)
        return self.last_result


    def revert(self, settings: Settings, loaded_at: datetime, why: str) -> tuple[bool, str]:
        """Put back the settings that were in force before a reload that could not be applied."""
        self.settings, self.loaded_at = settings, loaded_at
        since = format_utc(loaded_at, seconds=True)
        self.last_result = (False, f"{self.path}: could not be applied ({why}); keeping the settings loaded at {since}")
        return self.last_result


def _diff_sources(old: Settings, new: Settings) -> str:
    before = {s.id: s for s in old.sources}
    after = {s.id: s for s in new.sources}
    added = len(after.keys() - before.keys())
    removed = len(before.keys() - after.keys())
    changed = sum(1 for key in after.keys() & before.keys() if after[key] != before[key])
    return f"sources: {added} added, {removed} removed, {changed} changed"
