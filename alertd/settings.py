"""Settings: one frozen dataclass built once from the environment (no other module reads os.environ)."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alertd.core.model import KINDS
from alertd.keys import KeyFileError, KeyRing
from alertd.keys import load as load_keys
from alertd.tls import client_context, parse_url


class SettingsError(ValueError):
    """A setting is missing or malformed."""


# What a newcomer does about a setting that is not set: said once, in the one line the command prints.
HOW_TO_SET = ("export it (docs/configuration.md), or start `alertd demo` in another terminal and copy "
              "the export lines it prints")


def env_name(field_name: str) -> str:
    """The environment variable of a settings field (TWILIO_* keep their own names)."""
    return ("" if field_name.startswith("twilio_") else "ALERTD_") + field_name.upper()


def redact_url(url: str) -> str:
    """A URL fit to print: its password (if any) shown as ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc[-1]}"))


def _secret(default: str = "") -> str:
    return field(default=default, repr=False)


@dataclass(frozen=True)
class Settings:
    database_url: str = ""  # required: no default, so nothing runs silently against the machine's own PostgreSQL
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Several `alertd serve` on one host share the port (SO_REUSEPORT: the kernel spreads new connections among
    # them): for a host with more cores than one process and PostgreSQL use (docs/operations.md)
    http_reuse_port: bool = False
    public_url: str = "http://127.0.0.1:8080"
    jwt_secret: str = _secret()
    jwt_keys_file: str = ""  # signing keys with key ids (alertd keys rotate); empty: ALERTD_JWT_SECRET alone
    jwt_issuer: str = "alertd"
    jwt_audience: str = "alertd"
    ack_deadline_police_post: int = 60
    ack_deadline_crisis_centre: int = 120
    ack_deadline_mobile_unit: int = 90
    max_misses: int = 3
    # The call-out after max_misses: at most this many responders of the kind, nearest first, within this radius
    # (about two hours by rural road): enough for one to answer, and never hundreds of SMS for one alert.
    broadcast_max_responders: int = 5
    broadcast_radius_m: float = 100_000.0
    cancel_answer_floor_s: float = 1.0  # cancel and duress-cancel both answer no sooner: timing cannot tell them apart
    cancel_max_wrong_pins: int = 3  # wrong PINs on one alert before no PIN cancels it (someone may hold her phone)
    accurate_fix_m: float = 1000.0
    redispatch_min_move_m: float = 300.0
    repeat_priority_after: int = 3  # repeats of an open alert (she keeps pressing) that raise its priority
    engine_poll_s: float = 0.5
    outbox_max_attempts: int = 8
    db_pool_min: int = 2
    db_pool_max: int = 10
    intake_committers: int = 4  # transactions committing groups of app alerts at once
    intake_max_group: int = 64  # alerts at most in one group commit
    # Request budgets (token buckets; alerts never spend one): requests a second on average, and at once.
    budget_source_rate: float = 20.0  # per source address: a console or a few phones behind one NAT
    budget_source_burst: int = 200  # a console's page load and a phone's queued fixes fit many times over
    budget_device_rate: float = 1.0  # per phone device: fixes every few seconds and a PIN now and then
    budget_device_burst: int = 30
    device_alerts_at_once: int = 64  # one device's alerts in progress at once; more wait their turn (never refused)
    log_level: str = "INFO"
    data_dir: str = ".alertd"
    twilio_account_sid: str = ""
    twilio_auth_token: str = _secret()
    twilio_from_number: str = ""
    twilio_auth_token_secondary: str = _secret()  # the next token while rotating: webhooks signed by either pass
    twilio_api_url: str = ""  # empty: Twilio's own API; tests point it at a local fake
    sms_validity_s: int = 600  # a message stuck in the provider's queue longer than this is dropped, not sent late
    sms_send_timeout_s: float = 10.0
    sms_webhook_hold_s: float = 10.0  # an inbound SMS waits this long for a database primary (Twilio gives 15 s)
    sms_gateway_url: str = ""  # a second SMS provider (generic HTTP gateway); empty: none
    sms_gateway_auth: str = _secret()  # sent verbatim as the Authorization header
    sms_gateway_body: str = '{"to": "$to", "text": "$text", "ref": "$ref"}'  # JSON or form template
    sms_gateway_prefixes: str = ""  # comma-separated E.164 prefixes routed to the gateway; empty: all
    sms_timezone: str = "Asia/Almaty"  # deadlines in responder SMS are in this local time (IANA zone name)
    mqtt_admin_url: str = _secret()  # dynamic-security admin account; empty: credentials stay in the database
    mqtt_ca_file: str = ""  # with mqtts:// URLs: the only CA trusted for the broker; empty: the system's CAs
    mqtt_cert_file: str = ""  # a client certificate (PEM) for brokers that require one; optional
    mqtt_key_file: str = ""  # its private key (PEM), unless the certificate file holds it
    mqtt_client_id: str = ""  # the ingest's persistent session; empty: alertd-<host>-<http port>
    mqtt_session_expiry_s: int = 86400
    mqtt_ingest: bool = True
    button_silence_s: int = 6 * 3600
    button_low_battery: float = 0.2
    unit_silence_s: int = 300
    # Reverse proxies whose X-Forwarded-For is believed (addresses or CIDRs, comma-separated); empty: none, the
    # socket's peer is the client. Trust only proxies that overwrite or append to the header themselves.
    trusted_proxies: str = ""
    metrics_token: str = _secret()  # when set, GET /metrics needs `Authorization: Bearer <token>`
    retention_precise_days: int = 30  # after an alert closes: her trail, exact place and words are kept this long
    retention_audit_days: int = 365  # security events, sign-in failures and the audit log
    # Names of the fields the environment set (not a setting: lets `alertd demo` honour ALERTD_HTTP_PORT).
    given: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    @cached_property
    def jwt_ring(self) -> KeyRing:
        """The JWT keys of ALERTD_JWT_KEYS_FILE (read once); empty without one."""
        if not self.jwt_keys_file:
            return KeyRing()
        try:
            return load_keys(self.jwt_keys_file)
        except KeyFileError as exc:
            raise SettingsError(f"ALERTD_JWT_KEYS_FILE: {exc}") from None

    def ack_deadline(self, kind: str) -> int:
        """Seconds a responder of this kind has to acknowledge a dispatch."""
        return int(getattr(self, f"ack_deadline_{kind}"))

    @property
    def deadlines(self) -> dict[str, int]:
        return {kind: self.ack_deadline(kind) for kind in KINDS}

    @cached_property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """ALERTD_TRUSTED_PROXIES parsed; a bare address is a network of one."""
        try:
            return tuple(ipaddress.ip_network(part.strip(), strict=False)
                         for part in self.trusted_proxies.split(",") if part.strip())
        except ValueError as exc:
            raise SettingsError(f"ALERTD_TRUSTED_PROXIES: {exc}") from None

    @property
    def twilio_configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token and self.twilio_from_number)

    def mqtt_parts(self) -> tuple[str, int, str | None, str | None]:
        """host, port, username, password of ALERTD_MQTT_URL."""
        return self._mqtt_url(self.mqtt_url, "ALERTD_MQTT_URL")[:4]

    @property
    def mqtt_tls(self) -> bool:
        """ALERTD_MQTT_URL is mqtts://."""
        return self._mqtt_url(self.mqtt_url, "ALERTD_MQTT_URL")[4]

    def mqtt_tls_context(self) -> ssl.SSLContext:
        """The TLS context for mqtts:// connections (the service's and the dynamic-security admin's)."""
        return client_context(self.mqtt_ca_file, self.mqtt_cert_file, self.mqtt_key_file)

    @staticmethod
    def _mqtt_url(url: str, name: str) -> tuple[str, int, str | None, str | None, bool]:
        try:
            return parse_url(url, name)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    def require(self, *names: str) -> Settings:
        """SettingsError naming, in one line, every one of these settings that is not set."""
        missing = [env_name(n) for n in names if not getattr(self, n)]
        if len(missing) == 1:
            raise SettingsError(f"{missing[0]} is not set: {HOW_TO_SET}")
        if missing:
            raise SettingsError(f"{', '.join(missing[:-1])} and {missing[-1]} are not set: "
                                + HOW_TO_SET.replace("export it", "export them"))
        return self

    def validate(self) -> Settings:
        if not self.jwt_secret:
            self.require("jwt_secret")
        if len(self.jwt_secret.encode()) < 32:
            raise SettingsError(f"ALERTD_JWT_SECRET is {len(self.jwt_secret.encode())} bytes long; it must be at "
                                f"least 32 (for example: export ALERTD_JWT_SECRET=\"$(openssl rand -base64 48)\")")
        _ = self.jwt_ring  # read now, so a bad keys file stops the start rather than a request
        for kind in KINDS:
            if self.ack_deadline(kind) <= 0:
                raise SettingsError(f"ALERTD_ACK_DEADLINE_{kind.upper()} must be positive")
        try:
            ZoneInfo(self.sms_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"ALERTD_SMS_TIMEZONE: unknown time zone {self.sms_timezone!r}") from None
        if not 1 <= self.sms_validity_s <= 36000:  # Twilio refuses every message outside this range
            raise SettingsError("ALERTD_SMS_VALIDITY_S must be between 1 and 36000")
        if not 1 <= self.intake_committers < self.db_pool_max:  # the engine and the API need connections too
            raise SettingsError("ALERTD_INTAKE_COMMITTERS must be at least 1 and below ALERTD_DB_POOL_MAX")
        for name in ("source", "device"):
            if getattr(self, f"budget_{name}_rate") <= 0 or getattr(self, f"budget_{name}_burst") < 1:
                raise SettingsError(f"ALERTD_BUDGET_{name.upper()}_RATE must be positive and "
                                    f"ALERTD_BUDGET_{name.upper()}_BURST at least 1")
        if self.broadcast_max_responders < 1 or self.broadcast_radius_m <= 0:
            raise SettingsError("ALERTD_BROADCAST_MAX_RESPONDERS must be at least 1 and ALERTD_BROADCAST_RADIUS_M "
                                "positive")
        if self.device_alerts_at_once < 1:
            raise SettingsError("ALERTD_DEVICE_ALERTS_AT_ONCE must be at least 1")
        if self.repeat_priority_after < 1:
            raise SettingsError("ALERTD_REPEAT_PRIORITY_AFTER must be at least 1")
        if self.cancel_max_wrong_pins < 1:
            raise SettingsError("ALERTD_CANCEL_MAX_WRONG_PINS must be at least 1")
        if self.intake_max_group < 1:
            raise SettingsError("ALERTD_INTAKE_MAX_GROUP must be at least 1")
        self.check_retention()
        self.mqtt_parts()
        _ = self.trusted_proxy_networks  # parsed now, so a typo stops the start rather than a request
        if self.mqtt_admin_url:
            self._mqtt_url(self.mqtt_admin_url, "ALERTD_MQTT_ADMIN_URL")
        self._check_tls_files()
        return self

    def _check_tls_files(self) -> None:
        for name in ("mqtt_ca_file", "mqtt_cert_file", "mqtt_key_file"):
            path = getattr(self, name)
            if path and not os.path.isfile(path):
                raise SettingsError(f"ALERTD_{name.upper()}: no such file {path!r}")
        if self.mqtt_key_file and not self.mqtt_cert_file:
            raise SettingsError("ALERTD_MQTT_KEY_FILE needs ALERTD_MQTT_CERT_FILE")
        if self.mqtt_ca_file or self.mqtt_cert_file:
            try:
                self.mqtt_tls_context()
            except (ssl.SSLError, OSError) as exc:
                raise SettingsError(f"ALERTD_MQTT_CA_FILE / _CERT_FILE / _KEY_FILE: {exc}") from None

    def check_retention(self) -> Settings:
        """The retention periods make sense (all `alertd purge` needs of the settings)."""
        if not 1 <= self.retention_precise_days <= self.retention_audit_days:
            raise SettingsError("ALERTD_RETENTION_PRECISE_DAYS must be at least 1 and at most "
                                "ALERTD_RETENTION_AUDIT_DAYS")
        return self

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ALERTD_* (and TWILIO_*) variables; unknown ones are ignored, bad values raise SettingsError."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(env_name(f.name))
            if raw is None or f.name == "given":
                continue
            try:
                values[f.name] = _cast(f.default, raw)
            except ValueError as exc:
                raise SettingsError(f"{env_name(f.name)}: {exc}") from None
        given = frozenset(values)
        if "public_url" not in values and ("http_host" in values or "http_port" in values):
            host = values.get("http_host", cls.http_host)
            values["public_url"] = f"http://{host}:{values.get('http_port', cls.http_port)}"
        return cls(**values, given=given)  # type: ignore[arg-type]

    def as_env(self) -> dict[str, str]:
        """The environment that reproduces these settings (secrets included: for child processes only)."""
        return {env_name(f.name): str(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "given"}


def _cast(default: object, raw: str) -> object:
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw
