"""deploy/nginx/alertd.conf on Debian's nginx in front of a real `alertd serve`, over HTTPS and WSS with a throwaway
CA: the phone app's alert, the console's live feed and acknowledgement, a Twilio-signed webhook checked against the
https:// ALERTD_PUBLIC_URL, HTTP/2, security headers, limits, and the client address alertd records."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from twilio.request_validator import RequestValidator

from alertd.channels.app import static as app_static
from alertd.channels.console import static as console_static
from alertd.local.services import free_port, wait_port
from alertd.settings import Settings
from alertd.store.db import connect
from tests.helpers import device_token, enrol, fix, officer_token, offset, seed_responders
from tests.tls_support import ThrowawayCA, render

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "alertd.conf"
TWILIO_TOKEN = "twilio-auth-token-for-the-nginx-test"
CLIENT_ADDRESS = "127.0.0.2"  # the test's requests come from here; nginx and alertd talk over 127.0.0.1


class Nginx:
    def __init__(self, directory: Path, upstream_port: int, port: int) -> None:
        directory.mkdir()
        self.directory = directory
        self.ca = ThrowawayCA(directory / "pki")
        cert, key = self.ca.issue("alerts")
        self.port, self.plain_port = port, free_port()
        site = render(CONFIG.read_text(), {
            "server 127.0.0.1:8080 ": f"server 127.0.0.1:{upstream_port} ",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{self.port} ssl http2;",
            "listen [::]:443 ssl http2;": "",
            "listen 80;": f"listen 127.0.0.1:{self.plain_port};",
            "listen [::]:80;": "",
            "/etc/ssl/alertd/fullchain.pem": str(cert),
            "/etc/ssl/alertd/privkey.pem": str(key),
            "/var/log/nginx/alertd.access.log": str(directory / "access.log"),
        })
        (directory / "alertd.conf").write_text(site)
        # What Debian's /etc/nginx/nginx.conf gives the site, in this folder.
        temp = "\n".join(f"    {kind}_temp_path {directory}/{kind};" for kind in
                         ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (directory / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log;\n"
            f"{'user root;' if os.geteuid() == 0 else ''}\n"
            f"events {{ worker_connections 256; }}\n"
            f"http {{\n    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n{temp}\n"
            f"    include {directory}/alertd.conf;\n}}\n")
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        check = subprocess.run([binary, "-t", "-p", str(directory), "-c", str(directory / "nginx.conf")],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen([binary, "-p", str(directory), "-c", str(directory / "nginx.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def client_tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca.pem)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture(scope="module")
async def behind_nginx(postgres, template_db, mosquitto, tmp_path_factory):
    """`alertd serve` on a database of its own with nginx in front, for this module's tests (starting them takes
    seconds); (nginx, the settings the service runs with)."""
    directory = tmp_path_factory.mktemp("nginx")
    name = f"nginx_{os.getpid()}"
    admin = await asyncpg.connect(postgres.dsn())
    await admin.execute(f"CREATE DATABASE {name} TEMPLATE {template_db} STRATEGY FILE_COPY")
    http_port, nginx_port = free_port(), free_port()  # the service's public URL names nginx's port
    served = Settings(database_url=postgres.dsn(name), mqtt_url=mosquitto.service_url, jwt_secret="nginx-" + "x" * 40,
                      http_port=http_port, public_url=f"https://127.0.0.1:{nginx_port}",
                      twilio_auth_token=TWILIO_TOKEN, db_pool_min=1, db_pool_max=5)
    env = {**os.environ, **served.replace(trusted_proxies="127.0.0.1").as_env()}
    log = open(directory / "serve.log", "wb")
    service = subprocess.Popen([sys.executable, "-m", "alertd", "serve"], env=env, stdout=subprocess.DEVNULL,
                               stderr=log)
    try:
        await asyncio.to_thread(wait_port, http_port, 30)
        nginx = await asyncio.to_thread(Nginx, directory / "nginx", http_port, nginx_port)
        try:
            yield nginx, served
        finally:
            await asyncio.to_thread(nginx.stop)
    finally:
        service.terminate()
        service.wait(15)
        log.close()
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


@pytest.fixture
async def service_db(behind_nginx):
    conn = await connect(behind_nginx[1].database_url)
    yield conn
    await conn.close()


def _session(nginx: Nginx) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(ssl=nginx.client_tls(), local_addr=(CLIENT_ADDRESS, 0))
    return aiohttp.ClientSession(connector=connector)


async def _next_event(ws, predicate, timeout: float = 15.0) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive_json()
            if message.get("type") == "event" and predicate(message["event"]):
                return message["event"]


async def test_app_alert_console_feed_ack_and_twilio_webhook_over_https(behind_nginx, service_db):
    nginx, settings = behind_nginx
    await seed_responders(service_db)
    now = datetime.now(UTC)  # the service runs on the system clock
    person = await enrol(service_db, now, phone="+77015550123")
    officer = {"Authorization": f"Bearer {officer_token(settings, 'pol-1', now)}"}
    async with _session(nginx) as http:
        # the console's live feed, over WSS through nginx's upgrade
        async with http.ws_connect(f"wss://127.0.0.1:{nginx.port}/v1/events",
                                   params={"access_token": officer_token(settings, "pol-1", now)}) as ws:
            assert (await ws.receive_json(timeout=10)) == {"type": "ready"}
            # the phone app's alert
            resp = await http.post(f"{nginx.url}/v1/alerts", json={"client_alert_id": "nginx-1",
                                                                   "location": fix(*offset(0.5))},
                                   headers={"Authorization": f"Bearer {device_token(settings, person, now)}"})
            assert resp.status == 201, await resp.text()
            assert resp.headers["Strict-Transport-Security"].startswith("max-age=63072000")
            alert_id = (await resp.json())["alert_id"]
            dispatched = await _next_event(ws, lambda e: e["alert_id"] == alert_id and e["type"] == "dispatched"
                                           and e["responder_id"] == "pol-1")
            # the officer acknowledges; the feed shows it
            resp = await http.post(f"{nginx.url}/v1/dispatches/{dispatched['dispatch_id']}/ack", headers=officer)
            assert resp.status == 200 and (await resp.json())["status"] == "acknowledged"
            await _next_event(ws, lambda e: e["type"] == "acknowledged"
                              and e["dispatch_id"] == dispatched["dispatch_id"])

        # Twilio signs the public https:// URL; alertd checks it against ALERTD_PUBLIC_URL, not the Host header
        form = {"MessageSid": "SMnginx0000000000000000000000001", "From": "+77015550123", "To": "+77010009999",
                "Body": "help"}
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(f"{settings.public_url}/v1/sms/inbound", form)
        resp = await http.post(f"{nginx.url}/v1/sms/inbound", data=form, headers={"X-Twilio-Signature": signature})
        assert resp.status == 200, await resp.text()
        assert "<Response" in await resp.text()
        inbound = "SELECT count(*) FROM sms_inbound WHERE message_sid = $1"
        assert await service_db.fetchval(inbound, form["MessageSid"]) == 1
        forged = {**form, "MessageSid": "SMnginx0000000000000000000000002"}
        resp = await http.post(f"{nginx.url}/v1/sms/inbound", data=forged, headers={"X-Twilio-Signature": signature})
        assert resp.status == 403
        assert await service_db.fetchval(inbound, forged["MessageSid"]) == 0
        assert await service_db.fetchval("SELECT count(*) FROM security_events WHERE kind = 'bad_signature'") == 1


async def test_http2_headers_limits_and_redirect(behind_nginx):
    nginx, _settings = behind_nginx
    context = nginx.client_tls()
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", nginx.port)) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.selected_alpn_protocol() == "h2"
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    async with _session(nginx) as http:
        for path, csp in (("/console/", console_static.CSP), ("/app/", app_static.CSP),
                          ("/healthz", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
                                       "form-action 'none'")):
            async with http.get(f"{nginx.url}{path}") as resp:
                assert resp.status == 200, path
                assert resp.headers.getall("Content-Security-Policy") == [csp], path
                assert resp.headers.getall("X-Content-Type-Options") == ["nosniff"], path
                assert "max-age=63072000" in resp.headers["Strict-Transport-Security"]
                assert resp.headers.get("Server") == "nginx", path  # no version
        async with http.get(f"{nginx.url}/metrics") as resp:
            assert resp.status == 404
        async with http.post(f"{nginx.url}/v1/alerts", data=b"x" * (300 * 1024),
                             headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 413
        async with http.get(f"http://127.0.0.1:{nginx.plain_port}/v1/alerts?x=1", allow_redirects=False) as resp:
            assert resp.status == 301
            assert resp.headers["Location"] == "https://127.0.0.1/v1/alerts?x=1"
    access = (nginx.directory / "access.log").read_text()
    assert "/healthz" in access and "x=1" not in access  # query strings (the console's token) are not logged


async def test_alertd_records_the_client_address_nginx_saw(behind_nginx, service_db):
    """X-Forwarded-For is replaced by nginx, and alertd believes it only from ALERTD_TRUSTED_PROXIES."""
    nginx, _settings = behind_nginx
    async with _session(nginx) as http:
        async with http.get(f"{nginx.url}/v1/dispatches", headers={"Authorization": "Bearer forged",
                                                                   "X-Forwarded-For": "203.0.113.9"}) as resp:
            assert resp.status == 401
    rows = await service_db.fetch("SELECT source FROM security_events WHERE kind = 'bad_token'")
    sources = [r["source"] for r in rows]
    assert sources == [f"http:{CLIENT_ADDRESS}"]
