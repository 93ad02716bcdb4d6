"""PIN hashing with argon2id; checks take the same work whichever PIN matches."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# A hash of nothing anyone types, checked when a PIN is not set so the work is the same either way.
_DUMMY = _hasher.hash("not-a-pin-\x00")


def hash_pin(pin: str) -> str:
    return _hasher.hash(pin)


def _matches(hash_: str | None, pin: str) -> bool:
    try:
        return _hasher.verify(hash_ or _DUMMY, pin) and hash_ is not None
    except (VerificationError, InvalidHashError):
        return False


def check_pins(cancel_hash: str | None, duress_hash: str | None, pin: str) -> str:
    """'cancel', 'duress' or 'wrong'. Both hashes are always checked, so timing does not tell which matched."""
    is_cancel = _matches(cancel_hash, pin)
    is_duress = _matches(duress_hash, pin)
    if is_duress:
        return "duress"
    return "cancel" if is_cancel else "wrong"


async def check_pins_async(cancel_hash: str | None, duress_hash: str | None, pin: str) -> str:
    """check_pins off the event loop (argon2 is deliberately slow)."""
    return await asyncio.get_running_loop().run_in_executor(None, check_pins, cancel_hash, duress_hash, pin)
