"""Button messages committed as a group: each message gets the answer it would get alone (pressed, repeated,
refused, heard), a device's messages are taken in order, and a refusal is recorded and changes nothing else."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from alertd.channels.buttons import protocol as button_protocol
from alertd.context import Context
from alertd.mqtt.dynsec import NoBroker
from alertd.service import buttons, cells, provisioning
from alertd.store.db import create_pool
from clients.button import protocol as firmware
from tests.helpers import all_at_once, enrol, offset, seed_responders

CELL = (401, 1, 2001, 30001)


@pytest.fixture
async def pool(settings):
    pool = await create_pool(settings.database_url, 1, 3)
    yield pool
    await pool.close()


async def _button(db, clock):
    person = await enrol(db, clock.now(), home=offset(3))
    creds = await provisioning.provision_button(db, NoBroker(), clock.now(), person_id=person.person_id)
    return creds


def _payload(creds, event, seq, clock, **kw) -> bytes:
    _topic, payload = firmware.message(creds.device_id, creds.hmac_secret, event, seq, int(clock.now().timestamp()),
                                       **kw)
    return payload


def _msg(creds, event, seq, clock, **kw) -> buttons.Inbound:
    return button_protocol.inbound(creds.device_id, event, _payload(creds, event, seq, clock, **kw))


async def _one_group(pool, settings, clock, inbound) -> tuple[list[buttons.Receipt], list[int]]:
    sizes = []
    committer = buttons.group_committer(pool, Context(settings, clock), committers=1,
                                        observe=lambda size, waits, seconds: sizes.append(size))
    return await all_at_once(committer, inbound), sizes


async def test_a_group_answers_each_message_as_if_alone(pool, settings, clock, db):
    await seed_responders(db)
    await cells.import_cells(db, [("LTE", *CELL, *reversed(offset(2)), 800.0, datetime(2026, 1, 1, tzinfo=UTC))])
    a, b, c, d, f = [await _button(db, clock) for _ in range(5)]
    _, forged = firmware.message(d.device_id, "00" * 32, "press", 1, int(clock.now().timestamp()))  # wrong key
    inbound = [
        _msg(a, "press", 1, clock, loc=(*offset(0.5), 15.0)),
        _msg(b, "heartbeat", 1, clock, bat=0.1),
        _msg(c, "press", 1, clock, cell=CELL),
        button_protocol.inbound(d.device_id, "press", forged),
        button_protocol.inbound(d.device_id, "press", b"{not json"),
        _msg(f, "heartbeat", 1, clock, bat=0.9),
        _msg(f, "press", 2, clock),
        _msg(a, "press", 1, clock, loc=(*offset(0.5), 15.0)),  # QoS 1 redelivery inside the same group
        button_protocol.inbound("b-nobody", "press", _payload(a, "press", 9, clock)),
    ]
    receipts, sizes = await _one_group(pool, settings, clock, inbound)

    assert sizes == [len(inbound)]
    assert [r.refused for r in receipts] == [None, None, None, "bad_mac", "malformed_payload", None, None, None,
                                             "unknown_device"]
    assert [r.ack_seq for r in receipts] == [1, None, 1, None, None, None, 2, 1, None]
    assert receipts[7].duplicate and receipts[7].alert_id == receipts[0].alert_id
    sources = {r["device_id"]: r["location_source"]
               for r in await db.fetch("SELECT device_id, location_source FROM alerts")}
    assert sources == {a.device_id: "gps", c.device_id: "cell", f.device_id: "home"}
    assert await db.fetchval("SELECT count(*) FROM dispatches") == 9
    state = {r["device_id"]: (r["last_seq"], r["battery"])
             for r in await db.fetch("SELECT device_id, last_seq, battery FROM buttons")}
    assert state[a.device_id][0] == 1 and state[c.device_id][0] == 1 and state[d.device_id][0] == 0
    assert state[b.device_id] == (1, pytest.approx(0.1)) and state[f.device_id] == (2, pytest.approx(0.9))
    kinds = sorted(r["kind"] for r in await db.fetch("SELECT kind FROM security_events"))
    assert kinds == ["bad_mac", "malformed_payload", "unknown_device"]

    # Later: the same press again is acknowledged again; a heartbeat's seq again is a duplicate; a press
    # reusing a heartbeat's seq raised nothing before, so it is a replay, refused.
    receipts, _ = await _one_group(pool, settings, clock, [
        _msg(a, "press", 1, clock), _msg(b, "heartbeat", 1, clock, bat=0.1), _msg(f, "press", 1, clock)])
    assert receipts[0].duplicate and receipts[0].ack_seq == 1
    assert receipts[1].duplicate and receipts[1].refused is None
    assert receipts[2].refused == "replayed_seq"
    assert await db.fetchval("SELECT count(*) FROM alerts") == 3
    assert json.loads(await db.fetchval(
        "SELECT detail::text FROM security_events WHERE kind = 'replayed_seq'"))["seq"] == 1
