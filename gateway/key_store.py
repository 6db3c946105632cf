"""API keys: what a key may do, and the JSON file that holds them (hashes only).

A key is ``lk_`` followed by 43 URL-safe characters (256 random bits), shown
once when it is created. The file keeps its SHA-256: with that much entropy a
plain hash cannot be reversed or guessed, so no slow password hash is needed,
and a lookup stays cheap on every call. The presented key's hash is compared
with every stored hash in constant time, so timing tells nothing about which
bytes matched.

File format (``LUMEN_GATEWAY_KEYS_FILE``)::

    {"keys": [{"id": "team-a", "sha256": "<64 hex>", "services": ["nlp", "embeddings", "gateway"],
               "rate_per_s": 10, "burst": 20, "period_s": 86400,
               "calls_per_period": 100000, "tokens_per_period": 5000000, "images_per_period": 0,
               "training_jobs": 2, "dataset_bytes": 1073741824, "admin": false}]}

Zero means unlimited for rate_per_s/burst (both must be set to limit), for
each *_per_period, for training_jobs (unfinished training jobs at once) and
dataset_bytes (bytes of training datasets kept at once); the training service
enforces those two, from the limits the gateway sends with each call. The
store re-reads the file when it changes, so keys are added and revoked
without a restart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SERVICES = ("nlp", "vision", "embeddings", "tabular", "training", "gateway")
KEY_PREFIX = "lk_"
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
DAY_S = 86_400


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """One key's identity and limits; never holds the key itself."""

    id: str
    sha256: str
    services: frozenset[str] = frozenset(SERVICES)
    rate_per_s: float = 0.0
    burst: int = 0
    period_s: int = DAY_S
    calls_per_period: int = 0
    tokens_per_period: int = 0
    images_per_period: int = 0
    training_jobs: int = 0  # unfinished (queued or running) training jobs at once; 0 = no limit
    dataset_bytes: int = 0  # bytes of training datasets stored at once (the key's uploads); 0 = no limit
    admin: bool = False

    def may_use(self, service: str) -> bool:
        return service in self.services

    @property
    def rate_limited(self) -> bool:
        return self.rate_per_s > 0 and self.burst > 0

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["services"] = sorted(self.services)
        return out

    @classmethod
    def from_json(cls, raw: Any) -> ApiKey:
        """A key from its file entry, every field checked by type: ``"admin": "false"`` is an
        error, not a truthy string that grants admin."""
        if not isinstance(raw, dict):
            raise ValueError(f"each entry of 'keys' must be an object, not {type(raw).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - names
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}")
        label = raw.get("id") if isinstance(raw.get("id"), str) else "?"
        for name, value in raw.items():
            kinds = FIELD_TYPES[name]
            # bool is an int in Python: a number field must not take true/false, nor a bool field 1/0.
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                want = " or ".join(k.__name__ for k in kinds)
                raise ValueError(f"key {label!r}: {name} must be {want}, not {type(value).__name__} {value!r}")
        services = raw.get("services", list(SERVICES))
        if not all(isinstance(s, str) for s in services):
            raise ValueError(f"key {label!r}: services must be a list of strings")
        key = cls(**{**raw, "services": frozenset(services)})
        key.check()
        return key

    def check(self) -> None:
        if not ID_PATTERN.match(self.id):
            raise ValueError(f"id {self.id!r} must be 1 to 64 characters of a-z, 0-9, '_', '.', '-'")
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"key {self.id!r}: sha256 must be 64 lowercase hex digits")
        if not self.services <= set(SERVICES):
            raise ValueError(f"key {self.id!r}: services must be among {SERVICES}")
        numbers = (
            self.rate_per_s,
            self.burst,
            self.calls_per_period,
            self.tokens_per_period,
            self.images_per_period,
            self.training_jobs,
            self.dataset_bytes,
        )
        if not all(math.isfinite(n) for n in numbers) or min(numbers) < 0 or self.period_s < 1:
            raise ValueError(f"key {self.id!r}: limits must be >= 0 and period_s >= 1")


# JSON types each field of a keys-file entry must have.
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "sha256": (str,),
    "services": (list,),
    "rate_per_s": (int, float),
    "burst": (int,),
    "period_s": (int,),
    "calls_per_period": (int,),
    "tokens_per_period": (int,),
    "images_per_period": (int,),
    "training_jobs": (int,),
    "dataset_bytes": (int,),
    "admin": (bool,),
}


# With keys off (local development) every call runs as this key: all services, no limits.
LOCAL_KEY = ApiKey(id="local", sha256="0" * 64, admin=True)


def read_keys(path: Path) -> list[ApiKey]:
    if not path.exists():
        return []
    raw = json.loads(path.read_text() or "{}")
    if not isinstance(raw, dict) or not isinstance(raw.get("keys", []), list):
        raise ValueError('the file must hold {"keys": [...]}')
    keys = [ApiKey.from_json(entry) for entry in raw.get("keys", [])]
    ids = [k.id for k in keys]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate key ids {duplicates}")
    return keys


def write_keys(path: Path, keys: Iterable[ApiKey]) -> None:
    """Atomically replace the file (readable by its owner only): the gateway never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"keys": [k.to_json() for k in keys]}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class KeyStore:
    """The keys of one file, re-read when the file changes."""

    path: Path
    reload_s: float = 5.0
    keys: dict[str, ApiKey] = field(default_factory=dict)
    _stamp: tuple[int, int] | None = field(default=None, init=False)
    _checked: float = field(default=float("-inf"), init=False)

    def __post_init__(self) -> None:
        self.reload(force=True)

    def reload(self, force: bool = False) -> None:
        """Re-read the file if it changed. A broken file keeps the keys already loaded (logged)."""
        self._checked = time.monotonic()
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
            if stamp != self._stamp:  # fail closed, but say why every call is refused
                log.warning("keys file %s does not exist: no key is accepted", self.path)
        if stamp == self._stamp and not force:
            return
        try:
            keys = read_keys(self.path)
        except (ValueError, TypeError, OSError) as exc:
            if force and self._stamp is None:
                raise ValueError(f"keys file {self.path}: {exc}") from exc
            log.error("keys file %s not reloaded, keeping %d keys: %s", self.path, len(self.keys), exc)
            return
        self._stamp = stamp
        self.keys = {k.id: k for k in keys}
        log.info("loaded %d API keys from %s", len(self.keys), self.path)

    def find(self, secret: str) -> ApiKey | None:
        """The key whose hash matches ``secret``, comparing every stored hash in constant time."""
        if time.monotonic() - self._checked >= self.reload_s:
            self.reload()
        digest = hash_secret(secret).encode()
        found = None
        for key in self.keys.values():  # no early exit: the time does not depend on which key matched
            if hmac.compare_digest(digest, key.sha256.encode()):
                found = key
        return found
