"""JWT signing keys with key ids: several accepted, one signing, so keys rotate without logging anyone out.

The keys live in a JSON file (ALERTD_JWT_KEYS_FILE, mode 0600), never in the database: a copy of the database must
not let anyone mint tokens. `{"signing": "k-…", "keys": {"k-…": "<secret>", …}}`. A token names its key in the
`kid` header; a token without one (issued before the first rotation) is checked with ALERTD_JWT_SECRET.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

MIN_BYTES = 32


class KeyFileError(ValueError):
    """The keys file is missing, malformed, or asks for something it cannot do."""


@dataclass(frozen=True)
class KeyRing:
    signing: str | None = None  # the key id new tokens are signed with; None: ALERTD_JWT_SECRET, without a kid
    keys: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {"signing": self.signing, "keys": self.keys}


def load(path: str | os.PathLike) -> KeyRing:
    """The ring in `path`; KeyFileError says what is wrong with it."""
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise KeyFileError(f"no keys file at {path}: create one with `alertd keys rotate`") from None
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read the keys file {path}: {exc}") from None
    keys, signing = doc.get("keys"), doc.get("signing") if isinstance(doc, dict) else None
    if not isinstance(keys, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in keys.items()):
        raise KeyFileError(f"{path}: `keys` must map key ids to secrets")
    if short := [kid for kid, secret in keys.items() if len(secret.encode()) < MIN_BYTES]:
        raise KeyFileError(f"{path}: keys {', '.join(short)} are shorter than {MIN_BYTES} bytes")
    if signing not in keys:
        raise KeyFileError(f"{path}: the signing key {signing!r} is not among the keys")
    return KeyRing(signing=signing, keys=dict(keys))


def _save(path: Path, ring: KeyRing) -> None:
    """Write the file whole (a temporary file renamed over it), readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".keys-")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(ring.as_json(), f, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_kid(now: datetime | None = None) -> str:
    return f"k-{(now or datetime.now(UTC)):%Y%m%d}-{secrets.token_hex(3)}"


def rotate(path: str | os.PathLike, *, sign: bool = True) -> tuple[str, KeyRing]:
    """Add a new random key (and sign with it unless `sign` is False); the old keys stay accepted."""
    path = Path(path)
    ring = load(path) if path.exists() else KeyRing()
    kid = new_kid()
    keys = {**ring.keys, kid: secrets.token_urlsafe(48)}
    ring = KeyRing(signing=kid if sign or ring.signing is None else ring.signing, keys=keys)
    _save(path, ring)
    return kid, ring


def use(path: str | os.PathLike, kid: str) -> KeyRing:
    """Sign with an accepted key from now on."""
    ring = load(path)
    if kid not in ring.keys:
        raise KeyFileError(f"no key {kid!r} in {path}")
    ring = KeyRing(signing=kid, keys=ring.keys)
    _save(Path(path), ring)
    return ring


def retire(path: str | os.PathLike, kid: str) -> KeyRing:
    """Stop accepting a key (tokens signed with it are refused); never the signing one."""
    ring = load(path)
    if kid not in ring.keys:
        raise KeyFileError(f"no key {kid!r} in {path}")
    if kid == ring.signing:
        raise KeyFileError(f"{kid} signs new tokens: rotate (or use another key) before retiring it")
    ring = KeyRing(signing=ring.signing, keys={k: v for k, v in ring.keys.items() if k != kid})
    _save(Path(path), ring)
    return ring
