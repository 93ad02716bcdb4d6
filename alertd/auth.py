"""JWTs for phone devices, officers, engineers and admins: HS256 only; pyjwt checks the required and time claims."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cachetools import LRUCache, TTLCache

from alertd.settings import Settings

ALGORITHM = "HS256"
ROLES = ("device", "officer", "supervisor", "engineer", "admin")
REQUIRED = ["exp", "iat", "iss", "aud", "sub", "role"]
# What each role acts on: a role token without its claim would otherwise act unscoped (an officer token without a
# responder would see every alert).
ROLE_CLAIMS = {"device": ("person_id", "device_id"), "officer": ("responder_id",), "supervisor": ("responder_id",)}
OPTIONAL_TEXT = ("region", "sid", "jti")
# How far ahead of alertd's clock a token's iat or nbf may be: the skew between alertd's own instances, which are the
# only issuers. Expiry gets none: a token is dead at its exp.
LEEWAY_S = 30


class TokenError(Exception):
    """The token is missing, malformed, forged, expired, not yet valid, or lacks what its role needs."""


@dataclass(frozen=True)
class Principal:
    sub: str
    role: str
    responder_id: str | None = None
    person_id: str | None = None
    device_id: str | None = None
    expired: bool = False  # only ever True for device tokens: a stale panic alert is still accepted
    region: str | None = None
    session_id: str | None = None  # console sign-ins: the token dies with its session (sign-out)

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.sub}"

    @property
    def person(self) -> str:
        """A device token's person (verify() refuses a device token without one)."""
        return _claim(self.person_id, "person_id")

    @property
    def device(self) -> str:
        """A device token's device (verify() refuses a device token without one)."""
        return _claim(self.device_id, "device_id")

    @property
    def responder(self) -> str:
        """An officer's or supervisor's responder (verify() refuses their tokens without one)."""
        return _claim(self.responder_id, "responder_id")


def _claim(value: str | None, name: str) -> str:
    if value is None:
        raise TokenError(f"the token has no {name}")
    return value


def _missing_role_claims(role: str, claims: dict) -> list[str]:
    return [name for name in ROLE_CLAIMS.get(role, ()) if not isinstance(claims.get(name), str) or not claims[name]]


def issue(settings: Settings, *, role: str, sub: str, ttl_s: int, now: datetime, **claims) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if missing := _missing_role_claims(role, claims):
        raise ValueError(f"a {role} token needs {', '.join(missing)}")
    body = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": sub,
        "role": role,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
        "jti": uuid.uuid4().hex,
        **{k: v for k, v in claims.items() if v is not None},
    }
    ring = settings.jwt_ring
    if ring.signing is None:
        return jwt.encode(body, settings.jwt_secret, algorithm=ALGORITHM)
    return jwt.encode(body, ring.keys[ring.signing], algorithm=ALGORITHM, headers={"kid": ring.signing})


# The key each header alertd has seen names: a token's header is its first segment, the same for every token signed
# with one key, so its key is looked up once, not parsed out of each new token again (a tenth of an alert's CPU in
# alertd under load was pyjwt; docs/benchmarks.md). Only headers that named a key alertd accepts are kept, with the
# Settings they were read under (another Settings, another lookup).
_KEYS: LRUCache[str, tuple[Settings, str]] = LRUCache(maxsize=64)


def _key(settings: Settings, token: str) -> str:
    """The key the token names in its `kid` header (it must be one alertd accepts), or ALERTD_JWT_SECRET for a token
    that names none (issued before the first rotation)."""
    header = token.split(".", 1)[0]
    known = _KEYS.get(header)
    if known is not None and known[0] is settings:
        return known[1]
    key = _key_named(settings, token)
    _KEYS[header] = (settings, key)
    return key


def _key_named(settings: Settings, token: str) -> str:
    kid = jwt.get_unverified_header(token).get("kid")
    if kid is None:
        return settings.jwt_secret
    if not isinstance(kid, str) or kid not in settings.jwt_ring.keys:
        raise TokenError("unknown key id")
    return settings.jwt_ring.keys[kid]


def _decode(settings: Settings, token: str, *, leeway: float, **checks: bool) -> dict:
    """pyjwt's decode: signature, the one algorithm, issuer, audience, the required claims, and the time `checks`."""
    options: Any = {"require": REQUIRED, "verify_exp": False, "verify_iat": False, "verify_nbf": False, **checks}
    return jwt.decode(token, _key(settings, token), algorithms=[ALGORITHM], audience=settings.jwt_audience,
                      issuer=settings.jwt_issuer, options=options, leeway=leeway)


@dataclass(frozen=True)
class _Verified:
    settings: Settings  # the keys it was checked with (another Settings, another check)
    principal: Principal
    at: float  # alertd's clock when it was checked
    exp: float


# Tokens that passed every check, unexpired: one alert request needs its token twice (its device's turn, then the
# handler), and a flooding device sends one token hundreds of times a second. A hit stands only with the same keys,
# on a clock that has not gone back, before the token's exp; anything else is checked in full again. Failures are
# never kept. Small on purpose: every entry is objects the garbage collector walks on each full collection (20,000
# entries made its pauses reach 100-200 ms under load; docs/benchmarks.md).
_VERIFIED: TTLCache[str, _Verified] = TTLCache(maxsize=2_048, ttl=60)


def verify(settings: Settings, token: str, now: datetime, *, allow_expired_device: bool = False) -> Principal:
    """Check a token against alertd's clock `now`; an expired device token passes only with allow_expired_device.

    pyjwt's own checks do the work, with their leeway. pyjwt compares with the system clock, so the leeway also
    carries `now`'s offset from it: zero in production, where `now` is the system clock; tests run on a fake clock.
    A token that passed is remembered until its exp (at most a minute), so a repeat costs a dictionary lookup.
    """
    at = now.timestamp()
    known = _VERIFIED.get(token)
    if known is not None and known.settings is settings and known.at <= at < known.exp:
        return known.principal
    who, exp = _verify(settings, token, now, allow_expired_device=allow_expired_device)
    if not who.expired and exp is not None and at < exp:
        _VERIFIED[token] = _Verified(settings, who, at, exp)
    return who


def _verify(settings: Settings, token: str, now: datetime, *,
            allow_expired_device: bool) -> tuple[Principal, float | None]:
    offset = now.timestamp() - time.time()
    try:
        claims = _decode(settings, token, leeway=offset + LEEWAY_S, verify_iat=True, verify_nbf=True)
        if type(claims["exp"]) is int and claims["exp"] > now.timestamp():
            # pyjwt's own exp check (int(exp) <= its clock - leeway, the leeway carrying `now`'s offset) on a plain
            # integer ahead of `now`: it would pass, so the signature is not checked a second time for it.
            expired = False
        else:
            try:
                _decode(settings, token, leeway=-offset, verify_exp=True)
                expired = False
            except jwt.ExpiredSignatureError:  # a well-formed exp in the past; "abc" or "NaN" is malformed, refused
                expired = True
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc) or type(exc).__name__) from None
    role = claims["role"]
    if role not in ROLES:
        raise TokenError("unknown role")
    if missing := _missing_role_claims(role, claims):
        raise TokenError(f"a {role} token needs {', '.join(missing)}")
    if any(claims.get(name) is not None and not isinstance(claims[name], str) for name in OPTIONAL_TEXT):
        raise TokenError(f"{', '.join(OPTIONAL_TEXT)} must be strings")
    if expired and not (allow_expired_device and role == "device"):
        raise TokenError("token expired")
    exp = claims["exp"]  # pyjwt checked it is a number (verify_exp)
    return Principal(
        sub=claims["sub"], role=role, responder_id=claims.get("responder_id"),
        person_id=claims.get("person_id"), device_id=claims.get("device_id"), expired=expired,
        region=claims.get("region"), session_id=claims.get("sid"),
    ), float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
