"""JWTs for phone devices, officers, engineers and admins: HS256 only, exp/iat/iss/aud/sub required."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from alertd.settings import Settings

ALGORITHM = "HS256"
ROLES = ("device", "officer", "supervisor", "engineer", "admin")
REQUIRED = ["exp", "iat", "iss", "aud", "sub"]


class TokenError(Exception):
    """The token is missing, malformed, forged or of the wrong audience."""


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


def issue(settings: Settings, *, role: str, sub: str, ttl_s: int, now: datetime, **claims) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
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
    return jwt.encode(body, settings.jwt_secret, algorithm=ALGORITHM)


def verify(settings: Settings, token: str, now: datetime, *, allow_expired_device: bool = False) -> Principal:
    """Check signature, algorithm, issuer, audience and expiry against the injected clock."""
    options = {"require": REQUIRED, "verify_exp": False, "verify_iat": False, "verify_nbf": False}
    try:
        claims = jwt.decode(token, settings.jwt_secret, algorithms=[ALGORITHM], audience=settings.jwt_audience,
                            issuer=settings.jwt_issuer, options=options)
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from None
    role = claims.get("role")
    if role not in ROLES:
        raise TokenError("unknown role")
    expired = now.timestamp() >= float(claims["exp"])
    if expired and not (allow_expired_device and role == "device"):
        raise TokenError("token expired")
    return Principal(
        sub=str(claims["sub"]), role=role, responder_id=claims.get("responder_id"),
        person_id=claims.get("person_id"), device_id=claims.get("device_id"), expired=expired,
        region=claims.get("region"), session_id=claims.get("sid"),
    )
