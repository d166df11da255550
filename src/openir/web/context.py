"""What every request needs: the engine, the dose store, the pseudonym key, caches.

Everything that several web workers must agree on lives in the database (failed logins, the data
version that invalidates dashboard caches) or in settings (the pseudonym key, the storage root), so
`openir serve --workers N` behaves as one server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from openir.core.settings import get_settings, load_secret

from .models import SharedState
from .security import LoginThrottle

GENERATION_CHECK_S = 0.5  # how often a worker asks the database whether another one wrote


@dataclass
class Ctx:
    """Per-application state shared by all requests: database engine, data folder, pseudonym key, caches."""

    engine: Engine
    home: Path
    secret: bytes = field(default_factory=load_secret)
    storage: Path = field(default_factory=lambda: get_settings().storage_root)
    limiter: LoginThrottle = None  # type: ignore[assignment]  # set from the engine
    cache_ttl_s: float = 30.0
    version: int = 0
    _seen: tuple[float, int] = (float("-inf"), -1)  # (when checked, database data version)
    _cache: dict[str, tuple[float, Any]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _key_locks: dict[str, threading.Lock] = field(default_factory=dict)
    _dose: Any = None

    def __post_init__(self) -> None:
        if self.limiter is None:
            self.limiter = LoginThrottle(self.engine)
        with Session(self.engine) as s, s.begin():
            if s.get(SharedState, "data") is None:
                s.add(SharedState(name="data", version=0))

    @property
    def dose(self) -> Any:
        """The dose store on the same database (its own ``dose_`` tables), opened on first use."""
        if self._dose is None:
            from openir.dose import DoseStore

            self._dose = DoseStore(url=self.engine.url.render_as_string(hide_password=False),
                                   root=self.storage / "dose", skin_dose=False)
        return self._dose

    def bump(self) -> None:
        """New data: tell every worker (the database's data version), then expire this worker's cache."""
        with Session(self.engine) as s, s.begin():
            s.execute(update(SharedState).where(SharedState.name == "data")
                      .values(version=SharedState.version + 1))
        self._expire()

    def _expire(self) -> None:
        """Results older than 5 s become stale, so a figure lags a change by at most that plus one
        computation (a stream of entries does not force a recomputation each)."""
        with self._lock:
            self.version += 1
            t = time.monotonic()
            for k, (t0, v) in list(self._cache.items()):
                if t - t0 >= min(5.0, self.cache_ttl_s):
                    self._cache[k] = (float("-inf"), v)

    def _sync(self) -> None:
        """Expire the cache when another worker wrote (checked at most every 0.5 s)."""
        t = time.monotonic()
        checked, seen = self._seen
        if t - checked < GENERATION_CHECK_S:
            return
        with Session(self.engine) as s:
            current = s.scalar(select(SharedState.version).where(SharedState.name == "data")) or 0
        self._seen = (t, current)
        if seen >= 0 and current != seen:
            self._expire()

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        """A dashboard computation shared by all users for ``cache_ttl_s`` seconds.

        Stale-while-revalidate: when a result expires, one request recomputes it while the
        others keep getting the previous one; only the very first computation is waited for.
        A write by any worker expires it within ``GENERATION_CHECK_S`` (see :meth:`bump`).
        """
        self._sync()
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
