"""Button presses, tests and heartbeats: check, dedupe, locate, raise the alert (a press) or record the proof (a
test: nothing is dispatched); a group of messages in one transaction (one message alone, or several together under
load: the statements are the same)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from alertd.context import Context
from alertd.core import validate
from alertd.core.model import Location, Refused
from alertd.service import intake, proofs
from alertd.service.group_commit import COALESCE_S, GroupCommit
from alertd.service.timeline import Batch, security_event
from alertd.store import queries

log = logging.getLogger("alertd.buttons")
PHONE_FIX_MAX_AGE = timedelta(minutes=10)
MAX_SKEW_S = int(validate.MAX_AHEAD.total_seconds())  # a ts further than this from the service's clock is refused


def hmac_hex(secret_hex: str, text: str) -> str:
    """Lowercase hex HMAC-SHA256 of `text`, keyed with a button's secret."""
    return hmac.new(bytes.fromhex(secret_hex), text.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ButtonMessage:
    """A press, test or heartbeat as its channel read it; `signed` is the text its `mac` covers."""

    device_id: str
    event: str
    seq: int
    ts: int
    mac: str
    signed: str
    battery: float | None = None
    gps: tuple[float, float, float | None] | None = None  # lat, lon, accuracy in metres
    cell: tuple[int, int, int, int] | None = None        # mcc, mnc, lac, cid
    unusable: tuple[str, ...] = ()  # optional fields present but out of range or malformed: left out

    @property
    def sent_at(self) -> datetime:
        """When the button says it sent the message (`ts`, checked against the clock on receipt)."""
        return datetime.fromtimestamp(self.ts, UTC)

    def authentic(self, secret_hex: str) -> bool:
        return hmac.compare_digest(hmac_hex(secret_hex, self.signed), self.mac)

    def check(self, secret_hex: str, now_ts: float) -> None:
        """Refuse a forged MAC or a ts more than MAX_SKEW_S from now (seq is checked against the stored one)."""
        if not self.authentic(secret_hex):
            raise Refused("bad_mac", "mac does not match")
        if abs(self.ts - now_ts) > MAX_SKEW_S:
            raise Refused("stale_ts", "ts is more than 10 minutes off")


@dataclass(frozen=True)
class Receipt:
    """What the ingest does next: acknowledge `ack_seq` on the button's ack topic (as a test's when `test`), or
    nothing."""

    ack_seq: int | None = None
    alert_id: str | None = None
    refused: str | None = None
    duplicate: bool = False
    test: bool = False


@dataclass(frozen=True)
class Inbound:
    """A message as its channel read it: the device its topic names, and the message or why it was refused."""

    device_id: str
    via: str = "mqtt"  # or "sms": a press that came by the second path (channels/buttons/sms_fallback)
    message: ButtonMessage | None = None
    refused: Refused | None = None


async def receive(pool: asyncpg.Pool, ctx: Context, inbound: Inbound) -> Receipt:
    """One press or heartbeat alone in its transaction (the ingest goes through `group_committer`)."""
    async with pool.acquire() as conn, conn.transaction():
        return (await receive_group(conn, ctx, [inbound]))[0]


def group_committer(pool: asyncpg.Pool, ctx: Context, **options) -> GroupCommit[Inbound, Receipt]:
    """Button messages committed in groups under load, each acknowledged after its own group's commit."""
    return GroupCommit(pool, lambda conn, messages: receive_group(conn, ctx, messages), name="buttons",
                       order=lambda m: m.device_id, key=lambda m: m.device_id,
                       **{"coalesce_s": COALESCE_S, **options})


async def receive_group(conn: asyncpg.Connection, ctx: Context, inbound: list[Inbound]) -> list[Receipt]:
    """In the caller's transaction: check each message, advance its button, raise an alert for each press, record
    each test (and tell her caseworker; no alert); a refusal is recorded as a security event and changes nothing
    else. One receipt per message, in order; a device's messages are taken in the order given."""
    now = ctx.clock.now()
    receipts: list[Receipt | None] = [None] * len(inbound)
    messages: dict[int, ButtonMessage] = {}  # by position, the ones their channel could read
    for i, raw in enumerate(inbound):
        if raw.message is not None:
            messages[i] = raw.message
        else:
            receipts[i] = await _refuse(conn, now, raw.device_id, raw.refused or MALFORMED, via=raw.via)
    devices = sorted({m.device_id for m in messages.values()})
    buttons = {r["device_id"]: dict(r) for r in await conn.fetch(queries.lock_buttons, devices)}
    heard: dict[str, tuple[int, float | None]] = {}
    presses: list[int] = []
    repeats: list[int] = []
    tests: list[int] = []
    test_repeats: list[int] = []
    for i, message in messages.items():
        button = buttons.get(message.device_id)
        try:
            button = _check(button, message, now)
        except Refused as refused:
            receipts[i] = await _refuse(conn, now, message.device_id, refused, via=inbound[i].via, seq=message.seq)
            continue
        if message.seq <= button["last_seq"]:
            if message.event == "press":
                repeats.append(i)  # looked up once this group's own presses are in
            elif message.event == "test":
                test_repeats.append(i)  # likewise, once this group's own tests are in
            elif message.seq == button["last_seq"]:
                receipts[i] = Receipt(duplicate=True)
            else:
                receipts[i] = await _refuse(conn, now, message.device_id, REPLAYED, via=inbound[i].via,
                                            seq=message.seq)
            continue
        button["last_seq"] = message.seq
        if message.unusable:
            # Authentic, so acted on; what it carried out of range is recorded for the engineers, and left out.
            await security_event(conn, now, "unusable_field", f"mqtt:{message.device_id[:64]}",
                                 seq=message.seq, fields=list(message.unusable))
        battery = message.battery if message.battery is not None else heard.get(message.device_id, (0, None))[1]
        heard[message.device_id] = (message.seq, battery)
        if message.event == "heartbeat":
            receipts[i] = Receipt()
        elif message.event == "test":
            tests.append(i)
        else:
            presses.append(i)
    if heard:
        await conn.execute(queries.record_buttons_heard, now, ctx.settings.button_low_battery, list(heard),
                           [seq for seq, _ in heard.values()], [battery for _, battery in heard.values()])
        if any(b is not None and b < ctx.settings.button_low_battery for _, b in heard.values()):
            await conn.execute(queries.notify_wake, "supervision")
    if presses:
        raised = await _raise(conn, ctx, now, [(messages[i], buttons[messages[i].device_id]) for i in presses],
                              [inbound[i].via for i in presses])
        for i, outcome in zip(presses, raised, strict=True):
            receipts[i] = Receipt(ack_seq=messages[i].seq, alert_id=outcome.alert_id)
    if tests:
        await _record_tests(conn, now, [(messages[i], buttons[messages[i].device_id]) for i in tests])
        for i in tests:
            receipts[i] = Receipt(ack_seq=messages[i].seq, test=True)
    if repeats:
        await _seen_before(conn, now, messages, repeats, receipts, [inbound[i].via for i in repeats])
    if test_repeats:
        await _tested_before(conn, now, messages, test_repeats, receipts, [inbound[i].via for i in test_repeats])
    done = [r for r in receipts if r is not None]
    assert len(done) == len(inbound), "every message gets its receipt"
    return done


REPLAYED = Refused("replayed_seq", "seq is not above the last one seen")
MALFORMED = Refused("malformed_payload", "unreadable message")


def _check(button: dict | None, message: ButtonMessage, now: datetime) -> dict:
    """The button, if the message is really from it."""
    if button is None:
        raise Refused("unknown_device", "no such button")
    if button["revoked_at"] is not None:
        raise Refused("revoked_device", "button is revoked")
    message.check(button["hmac_secret"], now.timestamp())
    return button


async def _seen_before(conn: asyncpg.Connection, now: datetime, messages: dict[int, ButtonMessage],
                       repeats: list[int], receipts: list[Receipt | None], vias: list[str]) -> None:
    """A press already committed (QoS 1 redelivery, or the firmware retrying) is acknowledged again, once more;
    a press at or below the last seq that raised nothing is a replay."""
    rows = await conn.fetch(queries.find_alerts_by_keys_or_people, [messages[i].device_id for i in repeats],
                            [f"seq:{messages[i].seq}" for i in repeats], [])
    raised = {(r["device_id"], r["client_alert_id"]): r["id"] for r in rows}
    for i, via in zip(repeats, vias, strict=True):
        message = messages[i]
        alert_id = raised.get((message.device_id, f"seq:{message.seq}"))
        if alert_id is None:
            receipts[i] = await _refuse(conn, now, message.device_id, REPLAYED, via=via, seq=message.seq)
        else:
            receipts[i] = Receipt(ack_seq=message.seq, alert_id=str(alert_id), duplicate=True)


async def _record_tests(conn: asyncpg.Connection, now: datetime, tests: list[tuple[ButtonMessage, dict]]) -> None:
    """Each test press proves its button works: recorded, and her caseworker told (no alert, no dispatch)."""
    await conn.execute(queries.record_button_tests, [uuid.uuid4() for _ in tests],
                       [button["person_id"] for _, button in tests], [m.device_id for m, _ in tests],
                       [m.seq for m, _ in tests], now)
    batch = Batch(now)
    for message, button in tests:
        proofs.tell_caseworker(batch, caseworker_id=button["caseworker_id"], region=button["region"],
                               person_id=button["person_id"], channel="button", device_id=message.device_id)
    await batch.flush(conn)


async def _tested_before(conn: asyncpg.Connection, now: datetime, messages: dict[int, ButtonMessage],
                         repeats: list[int], receipts: list[Receipt | None], vias: list[str]) -> None:
    """A test already recorded (redelivered) is acknowledged again; one at or below the last seq that was never
    recorded as a test (a press's seq, or an old one) is a replay."""
    rows = await conn.fetch(queries.find_button_tests, [messages[i].device_id for i in repeats],
                            [f"seq:{messages[i].seq}" for i in repeats])
    recorded = {(r["device_id"], r["client_test_id"]) for r in rows}
    for i, via in zip(repeats, vias, strict=True):
        message = messages[i]
        if (message.device_id, f"seq:{message.seq}") in recorded:
            receipts[i] = Receipt(ack_seq=message.seq, duplicate=True, test=True)
        else:
            receipts[i] = await _refuse(conn, now, message.device_id, REPLAYED, via=via, seq=message.seq)


async def _raise(conn: asyncpg.Connection, ctx: Context, now: datetime, presses: list[tuple[ButtonMessage, dict]],
                 vias: list[str]):
    """Each press, located, through the core: a new alert, or a repeat of her open alert; in order (its event
    says which path the press came by)."""
    located = await _locate(conn, now, presses)
    # Each button row is locked and each seq is above its last one, so no (device, seq) was sent yet.
    return await intake.create_alerts(conn, ctx, now, [
        intake.NewAlert(person_id=button["person_id"], device_id=message.device_id, channel="button",
                        client_alert_id=f"seq:{message.seq}", triggered_at=message.sent_at,
                        location=where, details={"seq": message.seq, "via": via, **_unusable(message)})
        for (message, button), where, via in zip(presses, located, vias, strict=True)])


def _unusable(message: ButtonMessage) -> dict:
    return {"unusable": list(message.unusable)} if message.unusable else {}


async def _locate(conn: asyncpg.Connection, now: datetime,
                  presses: list[tuple[ButtonMessage, dict]]) -> list[Location | None]:
    """Best first, looking no further than needed: GPS in the press, her phone's fix if under 10 minutes old,
    the cell tower. None leaves the alert to its own fallback, her registered home."""
    where: list[Location | None] = [None] * len(presses)
    for i, (message, _) in enumerate(presses):
        if message.gps is not None:
            lat, lon, acc = message.gps
            where[i] = Location(lat, lon, acc, "gps", message.sent_at)
    if without := [i for i in range(len(presses)) if where[i] is None]:
        rows = await conn.fetch(queries.find_phones_last_fixes, list({presses[i][1]["person_id"] for i in without}),
                                now - PHONE_FIX_MAX_AGE)
        phones = {r["person_id"]: Location.from_row(r) for r in rows}
        for i in without:
            where[i] = phones.get(presses[i][1]["person_id"])
    if cells := [i for i in range(len(presses)) if where[i] is None and presses[i][0].cell is not None]:
        rows = await conn.fetch(queries.find_cell_towers, *map(list, zip(*(presses[i][0].cell for i in cells),
                                                                        strict=True)))
        towers = {(r["mcc"], r["mnc"], r["lac"], r["cid"]): r for r in rows}
        for i in cells:
            message = presses[i][0]
            if message.cell is not None and (tower := towers.get(message.cell)) is not None:
                where[i] = Location(tower["lat"], tower["lon"], tower["range_m"], "cell", message.sent_at)
    return where


async def _refuse(conn: asyncpg.Connection, now: datetime, device_id: str, refused: Refused, *, via: str = "mqtt",
                  **detail) -> Receipt:
    await security_event(conn, now, refused.kind, f"{via}:{device_id[:64]}", reason=refused.message, **detail)
    log.warning("button message refused", extra={"fields": {"device_id": device_id[:64], "kind": refused.kind}})
    return Receipt(refused=refused.kind)
