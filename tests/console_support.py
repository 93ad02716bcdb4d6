"""Shared by the console tests: accounts, a live server on a real port, raising an alert through the API."""

from __future__ import annotations

import aiohttp
from aiohttp.test_utils import TestServer

from alertd.app import create_app
from alertd.service import officer_accounts
from tests.helpers import device_token, enrol, fix, offset

PASSWORD = "correct horse battery"


async def add_officer(conn, now, username: str, responder_id: str, role: str = "officer", language: str = "en"):
    return await officer_accounts.add(conn, now, username=username, password=PASSWORD, responder_id=responder_id,
                              role=role, language=language)


async def start_server(settings, clock, *, run_engine: bool = True) -> TestServer:
    """The whole service on 127.0.0.1 and a free port, as a browser would reach it."""
    server = TestServer(create_app(settings, clock, run_engine=run_engine), host="127.0.0.1")
    await server.start_server()
    return server


async def raise_alert(base_url: str, settings, person, now, *, cid: str = "c-1", km_north: float = 0.5,
                      location: bool = True) -> str:
    """Raise an alert as the phone app does; returns its id."""
    body = {"client_alert_id": cid}
    if location:
        body["location"] = fix(*offset(km_north), accuracy_m=40.0)
    headers = {"Authorization": f"Bearer {device_token(settings, person, now)}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/v1/alerts", json=body, headers=headers) as resp:
            assert resp.status == 201, await resp.text()
            return (await resp.json())["alert_id"]


async def sign_in(client, username: str, password: str = PASSWORD):
    return await client.post("/console/api/session", json={"username": username, "password": password})


__all__ = ["PASSWORD", "add_officer", "enrol", "raise_alert", "sign_in", "start_server"]
