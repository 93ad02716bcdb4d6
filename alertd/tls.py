"""MQTT over TLS: `mqtts://` URLs, the broker's CA pinned (ALERTD_MQTT_CA_FILE), an optional client certificate."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # settings read URLs through this module: no MQTT client library needed for that
    import paho.mqtt.client as mqtt

SCHEMES = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883}


def parse_url(url: str, name: str = "the MQTT URL") -> tuple[str, int, str | None, str | None, bool]:
    """host, port, username, password and whether TLS is wanted, of mqtt[s]://user:pass@host:port."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"{name} must start with mqtt:// or mqtts://, got {parts.scheme!r}")
    return (parts.hostname or "127.0.0.1", parts.port or SCHEMES[parts.scheme], parts.username, parts.password,
            SCHEMES[parts.scheme] == 8883)


def client_context(ca_file: str = "", cert_file: str = "", key_file: str = "") -> ssl.SSLContext:
    """A TLS 1.2+ client context that checks the broker's name; with `ca_file` that CA is the only one trusted
    (create_default_context then loads no system roots), else the system's roots."""
    context = ssl.create_default_context(cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file:
        context.load_cert_chain(cert_file, key_file or None)
    return context


def secure(client: mqtt.Client, tls: bool, context: ssl.SSLContext | None) -> None:
    """Speak TLS on this client when its URL asked for it."""
    if tls:
        client.tls_set_context(context or client_context())
