"""`alertd demo` as a new user runs it: its own PostgreSQL and Mosquitto, a seeded region, and a document whose
curl line raises an alert that the printed officer token then sees dispatched to its post."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import subprocess
import sys

import aiohttp


def _read_document(process: subprocess.Popen, timeout_s: float = 120.0) -> dict:
    """The JSON document `alertd demo --json` prints once it serves (one object, closed by a lone '}')."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.rstrip() == "}":
            return json.loads("".join(lines))
    raise AssertionError(f"demo ended without its document: {''.join(lines)[-2000:]}")


def _curl_request(curl: str) -> tuple[str, dict, dict]:
    """URL, headers and JSON body of the demo's curl line (so the test raises exactly what a user would)."""
    words = shlex.split(curl)
    url = next(w for w in words if w.startswith("http"))
    headers = dict(words[i + 1].split(": ", 1) for i, w in enumerate(words) if w == "-H")
    body = json.loads(words[words.index("-d") + 1])
    return url, headers, body


async def test_demo_serves_a_seeded_region_and_its_curl_line_raises_a_dispatched_alert(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERTD_", "TWILIO_"))}
    process = subprocess.Popen([sys.executable, "-m", "alertd", "demo", "--json"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        doc = await asyncio.wait_for(asyncio.to_thread(_read_document, process), 180)
        assert set(doc["tokens"]) >= {"device", "officer", "admin", "engineer"}
        url, headers, body = _curl_request(doc["curl"])
        base = doc["urls"]["http"]
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=body, headers=headers) as resp:
                assert resp.status == 201, await resp.text()
                alert_id = (await resp.json())["alert_id"]
            officer = {"Authorization": f"Bearer {doc['tokens']['officer']}"}
            async with http.get(f"{base}/v1/dispatches", headers=officer) as resp:
                assert resp.status == 200
                dispatches = (await resp.json())["items"]
            assert [d["alert_id"] for d in dispatches] == [alert_id]  # the officer's post got this alert
            async with http.get(f"{base}/readyz") as resp:
                assert resp.status == 200
        assert (tmp_path / ".alertd").is_dir()  # its own data folder, in the folder it was started from
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 60)
        process.stdout.close()
    assert process.returncode == 0
