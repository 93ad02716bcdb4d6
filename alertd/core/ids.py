"""Identifiers people read aloud or type: no 0/O, 1/I/L, 2/Z, 5/S look-alikes."""

from __future__ import annotations

import secrets

_ID_ALPHABET = "346789ABCDEFGHJKMNPQRTUVWXY"


def new_id(prefix: str, length: int = 8) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))
