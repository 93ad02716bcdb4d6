"""A button press as one compact signed SMS, read back into the MQTT press it stands for.

    AB1 <device_id> <seq> <ts> <where> <mac>

`<where>` is `<lat>,<lon>,<acc_m>` (a GPS fix), `c<mcc>-<mnc>-<lac>-<cid>` (the serving cell) or `-`; `<mac>` is
the press's own HMAC (lowercase hex HMAC-SHA256 of "<device_id>|press|<seq>|<ts>" keyed with the button's
secret), so an SMS press is exactly as authentic, as fresh and as unique as the MQTT one. ~125 characters: one
GSM-7 segment. The firmware's side is `clients/button/protocol.py` (`sms_text`).
"""

from __future__ import annotations

import json
import logging
import re

import asyncpg

from alertd.channels.buttons import protocol
from alertd.context import Context
from alertd.core.model import Refused
from alertd.service import buttons
from alertd.service.timeline import security_event

log = logging.getLogger("alertd.channels.buttons.sms_fallback")
TAG = "AB1"
SOURCE = "sms:button"
_DEVICE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_button_sms(body: str) -> bool:
    """Whether an inbound SMS claims to be a button's press (then it is never read as a survivor's text)."""
    return body.lstrip().startswith(TAG + " ")


def parse(body: str) -> buttons.Inbound:
    """The MQTT press a button SMS stands for (its payload as the broker would carry it), or Refused."""
    words = body.split()
    if len(words) != 6 or words[0] != TAG or not _DEVICE.fullmatch(words[1]):
        raise Refused("malformed_payload", "a button SMS is: AB1 device_id seq ts where mac")
    _, device_id, seq, ts, where, mac = words
    try:
        doc: dict = {"seq": int(seq), "ts": int(ts), "mac": mac}
        if where.startswith("c"):
            mcc, mnc, lac, cid = (int(part) for part in where[1:].split("-"))
            doc["cell"] = {"mcc": mcc, "mnc": mnc, "lac": lac, "cid": cid}
        elif where != "-":
            lat, lon, acc = (float(part) for part in where.split(","))
            doc["loc"] = {"lat": lat, "lon": lon, "acc": acc}
    except ValueError:
        raise Refused("malformed_payload", "seq, ts and where must be numbers") from None
    return protocol.inbound(device_id, "press", json.dumps(doc).encode(), via="sms")


async def receive(pool: asyncpg.Pool, ctx: Context, body: str) -> buttons.Receipt:
    """Check and commit the press (or refuse it, recorded as a security event), like one off the broker."""
    try:
        press = parse(body)
    except Refused as refused:
        async with pool.acquire() as conn:
            await security_event(conn, ctx.clock.now(), refused.kind, SOURCE, reason=refused.message)
        log.warning("button SMS refused", extra={"fields": {"kind": refused.kind}})
        return buttons.Receipt(refused=refused.kind)
    async with pool.acquire() as conn, conn.transaction():
        return (await buttons.receive_group(conn, ctx, [press]))[0]
