"""Button and unit-terminal simulator.

    python -m clients.simulator press --url mqtt://B-X:PASS@127.0.0.1:1883 --device B-X --secret HEX [--lat 50 --lon 70]
    python -m clients.simulator --ca-file ca.pem press --url mqtts://B-X:PASS@broker.example.org:8883 ...
    python -m clients.simulator heartbeat --url ... --device B-X --secret HEX --bat 0.15
    python -m clients.simulator test --url ... --device B-X --secret HEX    (her test gesture: nothing dispatched)
    python -m clients.simulator swarm --url mqtt://127.0.0.1:1883 --buttons buttons.json --presses 1000 --rate 200
    python -m clients.simulator unit-move --url mqtt://mu-1:PASS@127.0.0.1:1883 --unit mu-1 --lat 50.1 --lon 70.2
    python -m clients.simulator unit-listen --url ... --unit mu-1        (prints dispatches as they arrive)
    python -m clients.simulator unit-ack --url ... --unit mu-1 --dispatch-id ID [--status en_route]

A button's seq is kept in a state file (default ~/.alertd-simulator.json) so it keeps rising across runs, as the
firmware keeps it in flash. `swarm` reads a JSON list of [device_id, secret] pairs and needs a broker that lets
its connections publish for every button (an open test broker or an account with those rights).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from clients.simulator.sim import Button, Refused, Swarm, Unit


def _state(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


# Why alertd would not acknowledge a press the broker took: what a newcomer is told after the first silent try.
NO_ACK_CAUSES = ("alertd refused the press (a wrong --secret, which alertd logs as bad_mac; a --seq at or below one "
                 "it has seen; a clock more than 10 minutes off), or no alertd serve is connected to this broker")


def _tell_unanswered(args):
    def tell(seq: int, puback: str) -> None:
        if puback == "Success":
            why = f"the broker took it, so usually {NO_ACK_CAUSES}"
        elif puback == "no answer":
            why = f"the broker has not answered the publish either; otherwise {NO_ACK_CAUSES}"
        else:
            why = f"the broker refused the publish ({puback}): --url's username and password are not this button's"
        print(f"simulator: no ack for press {seq} after {args.retry:g} s: {why}. Still retrying every {args.retry:g} s "
              f"for up to {args.wait:g} s (--wait).", file=sys.stderr, flush=True)
    return tell


def _button(args) -> Button:
    state = _state(args.state)
    seq = args.seq if args.seq is not None else state.get(args.device, 0)
    on_unanswered = _tell_unanswered(args) if hasattr(args, "wait") else None
    return Button(args.url, args.device, args.secret, seq=seq, retry_s=args.retry, ca_file=args.ca_file,
                  on_unanswered=on_unanswered).connect()


def _save_seq(args, button: Button) -> None:
    state = _state(args.state)
    state[button.device_id] = button.seq
    args.state.write_text(json.dumps(state))


def cmd_press(args) -> dict:
    button = _button(args)
    try:
        loc = (args.lat, args.lon, args.acc) if args.lat is not None else None
        cell = tuple(int(x) for x in args.cell.split(",")) if args.cell else None
        started = time.monotonic()
        seq = button.press(loc=loc, cell=cell, bat=args.bat, wait_s=args.wait)
        return {"device_id": args.device, "seq": seq, "acked_after_ms": round((time.monotonic() - started) * 1000, 1)}
    finally:
        _save_seq(args, button)
        button.close()


def cmd_test(args) -> dict:
    button = _button(args)
    try:
        started = time.monotonic()
        seq = button.test(bat=args.bat, wait_s=args.wait)
        return {"device_id": args.device, "seq": seq, "test": True,
                "acked_after_ms": round((time.monotonic() - started) * 1000, 1)}
    finally:
        _save_seq(args, button)
        button.close()


def cmd_heartbeat(args) -> dict:
    button = _button(args)
    try:
        return {"device_id": args.device, "puback": button.heartbeat(args.bat), "seq": button.seq}
    finally:
        _save_seq(args, button)
        button.close()


def cmd_swarm(args) -> dict:
    pairs = [tuple(p) for p in json.loads(Path(args.buttons).read_text())]
    swarm = Swarm(args.url, pairs, connections=args.connections, ca_file=args.ca_file).connect()
    try:
        start = time.monotonic()
        for i in range(args.presses):
            if args.rate:
                delay = start + i / args.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            swarm.press(i % len(pairs))
        deadline = time.monotonic() + args.wait
        while len(swarm.acked) < args.presses and time.monotonic() < deadline:
            time.sleep(0.01)
        lat = sorted(swarm.latencies())
        return {"sent": args.presses, "acked": len(lat),
                "p50_ms": round(lat[len(lat) // 2] * 1000, 1) if lat else None,
                "p99_ms": round(lat[int(len(lat) * 0.99) - 1] * 1000, 1) if lat else None}
    finally:
        swarm.close()


def cmd_unit_move(args) -> dict:
    unit = Unit(args.url, args.unit, ca_file=args.ca_file).connect()
    try:
        return {"unit": args.unit, "puback": unit.move(args.lat, args.lon, args.acc)}
    finally:
        unit.close()


def cmd_unit_ack(args) -> dict:
    unit = Unit(args.url, args.unit, ca_file=args.ca_file).connect()
    try:
        return {"unit": args.unit, "puback": unit.ack(args.dispatch_id, args.status)}
    finally:
        unit.close()


def cmd_unit_listen(args) -> None:
    unit = Unit(args.url, args.unit, ca_file=args.ca_file)
    unit.conn.on_message = lambda _t, p: print(p.decode(), flush=True)
    unit.connect()
    try:
        while True:
            time.sleep(1)
    finally:
        unit.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m clients.simulator", description="alertd button/unit simulator")
    parser.add_argument("--ca-file", help="with mqtts:// URLs: the broker's CA (PEM), the only one trusted")
    sub = parser.add_subparsers(dest="command", required=True)

    def button_args(p):
        p.add_argument("--url", required=True, help="mqtt[s]://user:password@host:port")
        p.add_argument("--device", required=True)
        p.add_argument("--secret", required=True, help="the button's HMAC secret (hex)")
        p.add_argument("--seq", type=int, help="last seq used (default: from the state file)")
        p.add_argument("--state", type=Path, default=Path.home() / ".alertd-simulator.json")
        p.add_argument("--retry", type=float, default=1.0, help="seconds between retries of an unacked press")

    p = sub.add_parser("press", help="press once and retry until alertd acknowledges (prints the seq and delay)")
    button_args(p)
    p.add_argument("--lat", type=float, help="GPS fix to send with the press")
    p.add_argument("--lon", type=float)
    p.add_argument("--acc", type=float, default=15.0, help="accuracy of the fix in metres (default 15)")
    p.add_argument("--cell", help="mcc,mnc,lac,cid")
    p.add_argument("--bat", type=float, help="battery level 0..1")
    p.add_argument("--wait", type=float, default=30.0,
                   help="seconds to keep retrying an unacknowledged press before giving up (default 30)")
    p.set_defaults(handler=cmd_press)
    p = sub.add_parser("test", help="her test gesture: a test, retried until alertd acknowledges it as a test; "
                                    "nothing is dispatched")
    button_args(p)
    p.add_argument("--bat", type=float, help="battery level 0..1")
    p.add_argument("--wait", type=float, default=30.0, help="seconds to keep retrying (default 30)")
    p.set_defaults(handler=cmd_test)
    p = sub.add_parser("heartbeat")
    button_args(p)
    p.add_argument("--bat", type=float, required=True)
    p.set_defaults(handler=cmd_heartbeat)
    p = sub.add_parser("swarm")
    p.add_argument("--url", required=True)
    p.add_argument("--buttons", required=True, help="JSON file: [[device_id, secret], ...]")
    p.add_argument("--presses", type=int, default=100)
    p.add_argument("--rate", type=float, default=0.0, help="presses/s (0: as fast as possible)")
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--wait", type=float, default=60.0)
    p.set_defaults(handler=cmd_swarm)
    for name, handler in (("unit-move", cmd_unit_move), ("unit-ack", cmd_unit_ack), ("unit-listen", cmd_unit_listen)):
        p = sub.add_parser(name)
        p.add_argument("--url", required=True)
        p.add_argument("--unit", required=True)
        if name == "unit-move":
            p.add_argument("--lat", type=float, required=True)
            p.add_argument("--lon", type=float, required=True)
            p.add_argument("--acc", type=float, default=10.0)
        if name == "unit-ack":
            p.add_argument("--dispatch-id", required=True)
            p.add_argument("--status", default="acknowledged")
        p.set_defaults(handler=handler)
    args = parser.parse_args(argv)
    try:
        result = args.handler(args)
    except Refused as exc:
        print(f"simulator: the broker refused: {exc}", file=sys.stderr)
        sys.exit(2)
    except TimeoutError as exc:
        print(f"simulator: {exc}: {NO_ACK_CAUSES}", file=sys.stderr)
        sys.exit(1)
    if result is not None:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
