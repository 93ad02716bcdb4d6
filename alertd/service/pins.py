"""PIN hashing with argon2id; checks take the same work whichever PIN matches."""

from __future__ import annotations

import asyncio
import functools

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from alertd.core.model import Invalid
from alertd.store import queries

_hasher = PasswordHasher()


@functools.cache
def _dummy() -> str:
    """A hash of nothing anyone types, checked when a PIN is not set so the work is the same either way (made on
    first use, not at import: every command line start would pay for it)."""
    return _hasher.hash("not-a-pin-\x00")


# The phone app's calculator types digits only, and a PIN is told from a sum by having 4 or more of them.
PIN_MIN_DIGITS = 4


def check_pin_rules(pin: str | None, duress_pin: str | None) -> None:
    """Invalid unless each PIN given is 4 or more digits and the duress PIN differs from the cancel PIN."""
    for name, value in (("PIN", pin), ("duress PIN", duress_pin)):
        if value is not None and not (value.isascii() and value.isdigit() and len(value) >= PIN_MIN_DIGITS):
            raise Invalid(f"the {name} must be {PIN_MIN_DIGITS} or more digits (0-9), the only keys the phone app "
                          f"has for it; got {len(value)} characters{'' if value.isdigit() else ' with non-digits'}")
    if pin is not None and pin == duress_pin:
        raise Invalid("the duress PIN must differ from the PIN (it looks like a cancel but keeps the alert live)")


def hash_pin(pin: str) -> str:
    return _hasher.hash(pin)


def _matches(hash_: str | None, pin: str) -> bool:
    try:
        return _hasher.verify(hash_ or _dummy(), pin) and hash_ is not None
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


async def verdict_for(pool: asyncpg.Pool, person_id: str, pin: str) -> str:
    """Her stored PINs read and `pin` checked against both (off the event loop): what check_pins answers."""
    async with pool.acquire() as conn:
        pins = await conn.fetchrow(queries.get_person_pins, person_id)
    return await check_pins_async(pins["cancel_pin_hash"] if pins else None,
                                  pins["duress_pin_hash"] if pins else None, pin)
