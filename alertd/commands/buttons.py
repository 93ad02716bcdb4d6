"""buttons provision / rotate / revoke, units provision / revoke, cells import."""

from __future__ import annotations

import io
from pathlib import Path

from alertd.clock import SystemClock
from alertd.commands import CommandError
from alertd.mqtt.dynsec import broker_accounts
from alertd.service import cells, provisioning
from alertd.service.ports import BrokerError
from alertd.settings import Settings
from alertd.store import queries
from alertd.store.db import connect


def register(sub) -> None:
    p = sub.add_parser("buttons", help="wearable buttons: credentials for the broker and the HMAC secret")
    bsub = p.add_subparsers(dest="action", required=True)
    prov = bsub.add_parser("provision", help="a new button for a person; prints its secrets once")
    prov.add_argument("--person", required=True, help="the person's id (P-...)")
    prov.add_argument("--caseworker", help="responder id that hears this button's supervision notices")
    prov.add_argument("--qr", type=Path, help="also write the flashing config as a QR code PNG here")
    prov.set_defaults(handler=cmd_provision)
    rot = bsub.add_parser("rotate", help="new MQTT password and HMAC secret; the old ones stop working")
    rot.add_argument("device_id")
    rot.add_argument("--qr", type=Path)
    rot.set_defaults(handler=cmd_rotate)
    rev = bsub.add_parser("revoke", help="cut a button off at once")
    rev.add_argument("device_id")
    rev.set_defaults(handler=cmd_revoke)
    allow = bsub.add_parser("allow-tests", help="once after upgrading: let every button provisioned before test "
                                                "presses existed publish its tests (its broker role gains the topic)")
    allow.set_defaults(handler=cmd_allow_tests)

    p = sub.add_parser("units", help="mobile-unit terminals")
    usub = p.add_subparsers(dest="action", required=True)
    prov = usub.add_parser("provision", help="terminal credentials for a mobile unit; prints them once")
    prov.add_argument("unit_id")
    prov.set_defaults(handler=cmd_unit_provision)
    rev = usub.add_parser("revoke", help="cut a unit terminal off")
    rev.add_argument("unit_id")
    rev.set_defaults(handler=cmd_revoke)

    p = sub.add_parser("cells", help="cell towers, to locate presses without GPS")
    csub = p.add_subparsers(dest="action", required=True)
    imp = csub.add_parser("import", help="import an OpenCellID-format CSV (updates by mcc/mnc/lac/cid)")
    imp.add_argument("file", type=Path)
    imp.set_defaults(handler=cmd_cells_import)


async def _run(settings: Settings, action, *args, **kwargs):
    broker = broker_accounts(settings)
    conn = await connect(settings.database_url)
    try:
        return await action(conn, broker, SystemClock().now(), *args, **kwargs)
    except BrokerError as exc:
        raise CommandError(f"the broker refused, nothing changed: {exc}") from None
    finally:
        await conn.close()


def _show(creds: provisioning.Credentials, args) -> dict:
    out = creds.as_json()
    config = {"device_id": creds.device_id, "username": creds.username, "password": creds.password,
              "secret": creds.hmac_secret}
    if getattr(args, "qr", None):
        qr_png(config, args.qr)
        out["qr_png"] = str(args.qr)
    elif not args.json:
        out["qr"] = "\n" + qr_text(config)
    return out


def qr_png(config: dict, path: Path, scale: int = 8) -> None:
    """The flashing config as a QR code PNG (written directly: no imaging library needed)."""
    import json
    import struct
    import zlib

    import qrcode

    qr = qrcode.QRCode(border=4)
    qr.add_data(json.dumps(config, separators=(",", ":")))
    matrix = qr.get_matrix()
    rows = b"".join(
        b"\x00" + bytes(0 if dark else 255 for dark in line for _ in range(scale))
        for line in matrix for _ in range(scale))
    size = len(matrix) * scale

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))
    path.write_bytes(png)
    path.chmod(0o600)  # it holds the device's secrets


def qr_text(config: dict) -> str:
    import json

    import qrcode

    qr = qrcode.QRCode(border=1)
    qr.add_data(json.dumps(config, separators=(",", ":")))
    buf = io.StringIO()
    qr.print_ascii(out=buf, invert=True)
    return buf.getvalue()


async def cmd_provision(args, settings: Settings) -> dict:
    creds = await _run(settings, provisioning.provision_button, person_id=args.person,
                       caseworker_id=args.caseworker)
    return _show(creds, args)


async def cmd_rotate(args, settings: Settings) -> dict:
    return _show(await _run(settings, provisioning.rotate_button, args.device_id), args)


async def cmd_allow_tests(args, settings: Settings) -> dict:
    async def allow(conn, broker, _now):
        buttons = [r["username"] for r in await conn.fetch(queries.list_live_button_accounts)]
        return {"buttons": len(buttons), "allowed": await broker.allow_tests(buttons)}

    return await _run(settings, allow)


async def cmd_revoke(args, settings: Settings) -> dict:
    return await _run(settings, provisioning.revoke, getattr(args, "device_id", None) or args.unit_id)


async def cmd_unit_provision(args, settings: Settings) -> dict:
    return (await _run(settings, provisioning.provision_unit, args.unit_id)).as_json()


async def cmd_cells_import(args, settings: Settings) -> dict:
    if not args.file.exists():
        raise CommandError(f"no such file: {args.file}")
    conn = await connect(settings.database_url)
    try:
        n = await cells.import_cells(conn, cells.read(args.file))
    finally:
        await conn.close()
    return {"file": str(args.file), "towers": n}
