"""What every request needs: the engine, the dose store, the pseudonym key, caches."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from .security import RateLimiter


@dataclass
class Ctx:
    """Per-application state shared by all requests: database engine, data folder, pseudonym key, caches."""

    engine: Engine
    home: Path
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    limiter: RateLimiter = field(default_factory=RateLimiter)
    cache_ttl_s: float = 30.0
    version: int = 0
    _cache: dict[str, tuple[float, Any]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _key_locks: dict[str, threading.Lock] = field(default_factory=dict)
    _dose: Any = None

    @property
    def dose(self) -> Any:
        """The dose store on the same database (its own ``dose_`` tables), opened on first use."""
        if self._dose is None:
            from openir.dose import DoseStore

            self._dose = DoseStore(url=self.engine.url.render_as_string(hide_password=False),
                                   root=self.home / "dose", skin_dose=False)
        return self._dose

    def bump(self) -> None:
        """New data: results older than 5 s become stale, so a figure lags a change by at most
        that plus one computation (a stream of entries does not force a recomputation each)."""
        with self._lock:
            self.version += 1
            t = time.monotonic()
            for k, (t0, v) in list(self._cache.items()):
                if t - t0 >= min(5.0, self.cache_ttl_s):
                    self._cache[k] = (float("-inf"), v)

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        """A dashboard computation shared by all users for ``cache_ttl_s`` seconds.

        Stale-while-revalidate: when a result expires, one request recomputes it while the
        others keep getting the previous one; only the very first computation is waited for.
        """
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < self.cache_ttl_s:
                return hit[1]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        if hit is not None and not key_lock.acquire(blocking=False):
            return hit[1]  # someone is recomputing: serve the stale value
        if hit is None:
            key_lock.acquire()
        try:
            with self._lock:
                again = self._cache.get(key)
                if again is not None and time.monotonic() - again[0] < self.cache_ttl_s:
                    return again[1]
            value = make()
            with self._lock:
                self._cache[key] = (time.monotonic(), value)
            return value
        finally:
            key_lock.release()
