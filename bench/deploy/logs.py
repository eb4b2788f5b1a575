"""What gunicorn, the app and PostgreSQL logged, phase by phase, as counted lines.

A phase's lines run from the end of the previous phase's to the moment it is read (the last
phase is read again when the run ends): the server logs the end of a request after a client
that gave up has left. Lines are counted with their numbers, times and pids blanked, so the
same event in several workers is one line with a count. PostgreSQL's statements are cut
before their values (they carry sealed data and synthetic ids, nothing useful here).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["LogReader"]

GUNICORN = re.compile(r"WORKER TIMEOUT|failed to boot|Exception in worker|Shutting down|Reason:|Booting worker|"
                      r"Worker exiting|Handling signal|was sent|Unexpected|could not|outlived|deadlock|failed \(|"
                      r"bench: |[A-Za-z]+Error:|ERROR|CRITICAL", re.IGNORECASE)
TRACEBACK = re.compile(r'^\s*(File "|Traceback|raise |self\.|\^|~|return |The above exception|During handling)')
POSTGRES = re.compile(r"\b(ERROR|FATAL|PANIC):\s+(.*)$|^\s*Process \d+: (.*)$")


def _blank(text: str) -> str:
    return re.sub(r"\d+", "N", text).strip()[:160]


def _gunicorn_line(line: str) -> str | None:
    if not GUNICORN.search(line) or TRACEBACK.search(line):
        return None
    return _blank(re.sub(r"^\[[^]]*\] \[\d+\] ", "", line))  # gunicorn's time and pid


def _postgres_line(line: str) -> str | None:
    found = POSTGRES.search(line)
    if found is None:
        return None
    text = found.group(2) or found.group(3) or ""
    text = re.split(r" VALUES| WHERE|\(", text, maxsplit=1)[0]
    return "postgres: " + _blank(text)


@dataclass
class LogReader:
    """Offsets into gunicorn's log (with the app's) and PostgreSQL's, read forward phase by phase."""

    gunicorn: str
    postgres: str
    offsets: dict[str, int] = field(default_factory=dict)

    def read(self) -> tuple[Counter[str], list[str]]:
        """Counted notable lines since the last read, and the last few gunicorn lines as they are."""
        counts: Counter[str] = Counter()
        examples: list[str] = []
        for path, pick in ((self.gunicorn, _gunicorn_line), (self.postgres, _postgres_line)):
            text = self._read_forward(path)
            for line in text.splitlines():
                key = pick(line)
                if key is not None:
                    counts[key] += 1
                    if path == self.gunicorn:
                        examples.append(line[:300])
        return counts, examples[-6:]

    def _read_forward(self, path: str) -> str:
        if not os.path.exists(path):
            return ""
        with open(path, "rb") as log:
            log.seek(self.offsets.get(path, 0))
            data = log.read()
            self.offsets[path] = log.tell()
        return data.decode("utf-8", errors="replace")
