"""Button presses over the real Mosquitto: committed before acknowledged, once per (device, seq), located."""

from __future__ import annotations

import asyncio

from tests.buttons_support import (  # noqa: F401  (fixtures)
    button_service, button_settings, connected_button, provision_button, secured_broker,
)
from tests.helpers import enrol, offset, seed_responders


async def _alerts(db):
    return await db.fetch("SELECT id, device_id, client_alert_id, location_source, channel FROM alerts ORDER BY created_at")


async def test_press_raises_one_alert_and_is_acknowledged(button_service, button_settings, secured_broker, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    creds = await provision_button(db, button_settings, clock, person.person_id)
    button = await connected_button(secured_broker, creds, clock)
    try:
        seq = await asyncio.to_thread(button.press, loc=(*offset(0.5), 15.0))
    finally:
        button.close()
    rows = await _alerts(db)
    assert [(r["device_id"], r["client_alert_id"], r["channel"], r["location_source"]) for r in rows] == [
        (creds.device_id, f"seq:{seq}", "button", "gps")]
    kinds = {r["kind"]: r["responder_id"] for r in await db.fetch("SELECT kind, responder_id FROM dispatches")}
    assert kinds == {"police_post": "pol-1", "crisis_centre": "cc-1", "mobile_unit": "mu-1"}
