"""keys rotate / use / retire / list: JWT signing keys with key ids (alertd/keys.py)."""

from __future__ import annotations

from alertd import keys
from alertd.commands import CommandError
from alertd.settings import Settings


def register(sub) -> None:
    # needs=(): these read and write the keys file only, no database (the command line checks nothing else first)
    p = sub.add_parser("keys", help="JWT signing keys (ALERTD_JWT_KEYS_FILE): rotate without logging anyone out")
    ksub = p.add_subparsers(dest="action", required=True)
    rot = ksub.add_parser("rotate", help="add a new key and sign with it; older keys stay accepted")
    rot.add_argument("--accept-only", action="store_true",
                     help="add the key without signing with it yet (step 1 of a rotation across several instances)")
    rot.set_defaults(handler=cmd_rotate, needs=())
    use = ksub.add_parser("use", help="sign with this accepted key from now on")
    use.add_argument("kid")
    use.set_defaults(handler=cmd_use, needs=())
    ret = ksub.add_parser("retire", help="stop accepting a key (after the longest token life has passed)")
    ret.add_argument("kid")
    ret.set_defaults(handler=cmd_retire, needs=())
    ls = ksub.add_parser("list", help="key ids, and which one signs (never the secrets)")
    ls.set_defaults(handler=cmd_list, needs=())


def _path(settings: Settings) -> str:
    if not settings.jwt_keys_file:
        raise CommandError("set ALERTD_JWT_KEYS_FILE to where the keys live (e.g. /etc/alertd/jwt-keys.json)")
    return settings.jwt_keys_file


def _show(ring: keys.KeyRing, **extra) -> dict:
    return {**extra, "signing": ring.signing, "accepted": sorted(ring.keys),
            "restart": "copy the file to every instance, then restart them one at a time"}


def _run(action, *args, **kwargs):
    try:
        return action(*args, **kwargs)
    except keys.KeyFileError as exc:
        raise CommandError(str(exc)) from None


async def cmd_rotate(args, settings: Settings) -> dict:
    kid, ring = _run(keys.rotate, _path(settings), sign=not args.accept_only)
    return _show(ring, added=kid)


async def cmd_use(args, settings: Settings) -> dict:
    return _show(_run(keys.use, _path(settings), args.kid))


async def cmd_retire(args, settings: Settings) -> dict:
    return _show(_run(keys.retire, _path(settings), args.kid), retired=args.kid)


async def cmd_list(args, settings: Settings) -> dict:
    return _show(_run(keys.load, _path(settings)))
