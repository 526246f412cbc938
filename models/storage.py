"""Output files: generated names, atomic writes, safe look-ups, and a retention limit that spares busy files.

A file is "busy" while it is being written (it only exists under a temporary name until it is complete) or
while it is being served (callers hold `store.lease(name)`); the sweeper never removes a busy file.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from models.errors import InvalidInput, NotFound

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.(mp4|wav)$")
TMP_SUFFIX = ".part"


class OutputStore:
    def __init__(self, root: str | Path, max_age_s: float = 86400, max_total_bytes: float = 2 << 30):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_age_s, self.max_total_bytes = max_age_s, max_total_bytes
        self._leases: Counter[str] = Counter()
        self._lock = threading.Lock()

    @staticmethod
    def new_name(suffix: str = ".mp4") -> str:
        """A fresh, unguessable name; never derived from user input."""
        return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:12]}{suffix}"

    def temp_path(self, suffix: str = ".mp4") -> Path:
        """A temporary path in the store (same filesystem, so `commit` is an atomic rename)."""
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=suffix + TMP_SUFFIX)
        os.close(fd)
        return Path(tmp)

    def commit(self, tmp: Path, name: str) -> Path:
        final = self.root / name
        os.replace(tmp, final)
        self.sweep()
        return final

    def path(self, name: str) -> Path:
        """The stored file called `name`; rejects anything that is not a plain generated name."""
        if not SAFE_NAME.match(name or ""):
            raise InvalidInput(
                f"invalid file name {name!r}", allowed="names returned by the API, e.g. 20260101-120000-abc.mp4"
            )
        path = self.root / name
        if not path.is_file():
            raise NotFound(f"no such file: {name}")
        return path

    @contextlib.contextmanager
    def lease(self, name: str) -> Iterator[Path]:
        """Hold a file while serving it: the sweeper leaves it alone."""
        path = self.path(name)
        with self._lock:
            self._leases[name] += 1
        try:
            yield path
        finally:
            with self._lock:
                self._leases[name] -= 1
                if self._leases[name] <= 0:
                    del self._leases[name]

    def sweep(self, now: float | None = None) -> list[str]:
        """Delete finished files older than max_age, then the oldest until under max_total; returns names removed."""
        now = time.time() if now is None else now
        files = sorted((p.stat().st_mtime, p.stat().st_size, p) for p in self.root.iterdir() if SAFE_NAME.match(p.name))
        total = sum(size for _, size, _ in files)
        removed = []
        for mtime, size, path in files:
            too_old, too_big = now - mtime > self.max_age_s, total > self.max_total_bytes
            if not (too_old or too_big):
                continue
            with self._lock:
                if self._leases.get(path.name):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            total -= size
            removed.append(path.name)
        return removed
