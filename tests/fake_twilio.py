"""A local fake of Twilio's Messages API, for the SMS tests: the only thing in the suite that is faked.

It checks the account's basic auth and the form fields, records every message it accepts, answers with scripted
failures (400, 429, 500, a timeout before or after accepting), lists messages the way Twilio does (newest first),
and posts status callbacks signed with twilio's own RequestValidator.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "fake-primary-auth-token-0123456789"
FROM_NUMBER = "+15005550006"
_ERRORS = {400: 21211, 429: 20429, 500: 20500, 503: 20503}


@dataclass
class Sent:
    sid: str
    to: str
    from_: str
    body: str
    validity_period: str | None
    status_callback: str | None
    status: str = "queued"


@dataclass
class FakeTwilio:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    hang_s: float = 2.0  # how long a scripted timeout holds the request (longer than the client's timeout)
    messages: list[Sent] = field(default_factory=list)
    # next answers to a create: 400, 429, 500, "timeout", "accept_then_timeout"
    script: list[str | int] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    list_script: list[int] = field(default_factory=list)  # next answers to a list request: 500, 429, ...
    lists: int = 0
    unexpected: list[str] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> FakeTwilio:
        app = web.Application()
        base = "/2010-04-01/Accounts/{account}/Messages.json"
        app.router.add_post(base, self._create)
        app.router.add_get(base, self._list)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _authorised(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return (request.headers.get("Authorization") == f"Basic {expected}"
                and request.match_info["account"] == self.account_sid)

    async def _create(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            self.unexpected.append("bad auth")
            return _error(401, 20003, "Authenticate")
        form = await request.post()
        self.requests.append(dict(form))
        for required in ("To", "From", "Body"):
            if not form.get(required):
                self.unexpected.append(f"missing {required}")
                return _error(400, 21604, f"A '{required}' is required")
        action = self.script.pop(0) if self.script else "ok"
        if action == "timeout":
            await asyncio.sleep(self.hang_s)
            return _error(504, 20504, "too late")
        if isinstance(action, int):
            return _error(action, _ERRORS.get(action, 20000 + action), "scripted failure")
        sent = Sent(sid=f"SM{next(self._ids):032x}", to=form["To"], from_=form["From"], body=form["Body"],
                    validity_period=form.get("ValidityPeriod"), status_callback=form.get("StatusCallback"))
        self.messages.append(sent)
        if action == "accept_then_timeout":
            await asyncio.sleep(self.hang_s)
        return web.json_response(_resource(self.account_sid, sent), status=201)

    async def _list(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            self.unexpected.append("bad auth")
            return _error(401, 20003, "Authenticate")
        self.lists += 1
        if self.list_script:
            status = self.list_script.pop(0)
            return _error(status, _ERRORS.get(status, 20000 + status), "scripted failure")
        to, from_ = request.query.get("To"), request.query.get("From")
        size = int(request.query.get("PageSize", "50"))
        found = [m for m in reversed(self.messages)
                 if (to is None or m.to == to) and (from_ is None or m.from_ == from_)]
        return web.json_response({
            "messages": [_resource(self.account_sid, m) for m in found[:size]],
            "next_page_uri": None, "first_page_uri": request.path_qs, "previous_page_uri": None,
            "page": 0, "page_size": size, "start": 0, "end": max(0, len(found[:size]) - 1), "uri": request.path_qs,
        })

    def sent_to(self, to: str) -> list[Sent]:
        return [m for m in self.messages if m.to == to]

    async def post_status(self, client: TestClient, sent: Sent, status: str, error_code: str | None = None,
                          token: str | None = None):
        """Post a status callback to the app under test, signed for the URL it was asked to call."""
        params = {"MessageSid": sent.sid, "MessageStatus": status, "AccountSid": self.account_sid,
                  "To": sent.to, "From": sent.from_, "SmsSid": sent.sid, "SmsStatus": status}
        if error_code:
            params["ErrorCode"] = error_code
        url = sent.status_callback
        signature = RequestValidator(token or self.auth_token).compute_signature(url, params)
        path = "/" + url.split("://", 1)[1].split("/", 1)[1]
        return await client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def _resource(account_sid: str, m: Sent) -> dict:
    return {"sid": m.sid, "account_sid": account_sid, "to": m.to, "from": m.from_, "body": m.body,
            "status": m.status, "num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01",
            "date_created": "Thu, 26 Nov 2026 12:00:00 +0000", "date_updated": "Thu, 26 Nov 2026 12:00:00 +0000",
            "date_sent": None, "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{m.sid}.json"}


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "more_info": "", "status": status}, status=status)


# --- fixtures and helpers the SMS tests share ---------------------------------------------------------------


@pytest.fixture
async def fake_twilio():
    fake = await FakeTwilio().start()
    yield fake
    await fake.stop()


@pytest.fixture
def sms_settings(settings, fake_twilio):
    return settings.replace(twilio_account_sid=fake_twilio.account_sid, twilio_auth_token=fake_twilio.auth_token,
                            twilio_from_number=FROM_NUMBER, twilio_api_url=fake_twilio.url,
                            # 1.5 s: under the scripted timeouts' hang_s, over a first call's lazy imports of twilio's
                            # resources on a loaded machine (at 0.5 s, a first SMS sometimes timed out under -n auto)
                            sms_send_timeout_s=1.5, sms_webhook_hold_s=0.3)


@pytest.fixture
async def sms_client(sms_settings, clock):
    """The whole service with Twilio pointed at the fake; the engine is driven by hand."""
    from tests.helpers import running_app

    async with running_app(sms_settings, clock) as client:
        yield client


def sign(token: str, url: str, params: dict) -> dict:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}


_sids = itertools.count(1)


async def inbound(client: TestClient, settings, sender: str, body: str, *, sid: str | None = None,
                  token: str | None = None):
    """Post an inbound SMS webhook the way Twilio does, signed for the public URL."""
    params = {"MessageSid": sid or f"SM{next(_sids):032x}", "AccountSid": settings.twilio_account_sid,
              "From": sender, "To": FROM_NUMBER, "Body": body, "NumMedia": "0"}
    headers = sign(token or settings.twilio_auth_token, settings.public_url + "/v1/sms/inbound", params)
    return await client.post("/v1/sms/inbound", data=params, headers=headers)
