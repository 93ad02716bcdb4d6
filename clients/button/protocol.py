"""The button's side of the alertd MQTT protocol. Runs on MicroPython (ESP32) and under CPython (the tests).

Only what both have is used: hashlib.sha256, json (ujson on MicroPython), plain classes. No hmac module on
MicroPython, so HMAC-SHA256 is written out (RFC 2104).
"""

try:
    import ujson as json
except ImportError:  # CPython
    import json

import hashlib

PREFIX = "alertd/v1/buttons/"
BACKOFF_S = (1, 2, 4, 8, 15, 30, 60)  # between retries of an unacknowledged press, then every 60 s
ACK_TIMEOUT_S = 20  # a press not acknowledged over MQTT by then also goes by SMS (config "ack_timeout")
SMS_TAG = "AB1"
# Her test gestures (config "test_gesture": "long", "double", "both" or "off"). Anything else her finger does is a
# press: when in doubt, the button raises her alert.
LONG_PRESS_MS = 2000    # held at least this long, alone: a test
DOUBLE_PRESS_MS = 600   # two short presses, the second starting within this of the first release: a test
TEST_GESTURES = {"both": ("long", "double"), "long": ("long",), "double": ("double",), "off": ()}
# Not "long" by default: holding the button down is what a frightened hand does, and it must raise her alert.
DEFAULT_GESTURE = "double"
# LED patterns, (on ms, off ms) pairs: a test acknowledged blinks "all good"; one not acknowledged, "failed".
ALL_GOOD = ((100, 100), (100, 100), (100, 100))
FAILED = ((1500, 200),)


def hmac_sha256_hex(key, message):
    """Lowercase hex HMAC-SHA256 (RFC 2104) of bytes `message` keyed with bytes `key`."""
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key + b"\x00" * (block - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + message).digest()
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key) + inner).digest()
    return "".join("%02x" % b for b in outer)


def unhex(text):
    return bytes(int(text[i:i + 2], 16) for i in range(0, len(text), 2))


def topic(device_id, leaf):
    return PREFIX + device_id + "/" + leaf


def sign(secret_hex, device_id, event, seq, ts):
    return hmac_sha256_hex(unhex(secret_hex), ("%s|%s|%d|%d" % (device_id, event, seq, ts)).encode())


def message(device_id, secret_hex, event, seq, ts, bat=None, loc=None, cell=None):
    """(topic, payload bytes) of a press, test or heartbeat; loc = (lat, lon, acc), cell = (mcc, mnc, lac, cid).
    A test is signed with the event name "test", so it can never pass for a press, nor a press for a test."""
    body = {"seq": seq, "ts": ts, "mac": sign(secret_hex, device_id, event, seq, ts)}
    if bat is not None:
        body["bat"] = round(bat, 3)
    if loc is not None:
        body["loc"] = {"lat": loc[0], "lon": loc[1], "acc": loc[2]}
    if cell is not None:
        body["cell"] = {"mcc": cell[0], "mnc": cell[1], "lac": cell[2], "cid": cell[3]}
    return topic(device_id, event), json.dumps(body).encode()


def sms_text(device_id, secret_hex, seq, ts, loc=None, cell=None):
    """The press as one compact signed SMS (the second path): "AB1 device seq ts where mac", where is
    "lat,lon,acc", "c<mcc>-<mnc>-<lac>-<cid>" or "-", and mac the press's own MAC. One GSM-7 segment."""
    if loc is not None:
        where = "%.5f,%.5f,%d" % (loc[0], loc[1], int(loc[2]))
    elif cell is not None:
        where = "c%d-%d-%d-%d" % tuple(cell)
    else:
        where = "-"
    return "%s %s %d %d %s %s" % (SMS_TAG, device_id, seq, ts, where, sign(secret_hex, device_id, "press", seq, ts))


def acked_seq(payload):
    """The seq an ack carries, or None for anything else."""
    try:
        seq = json.loads(payload).get("seq")
    except (ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) else None


def acked_test(payload):
    """The seq of a test's ack (`{"seq": n, "test": true}`), or None for anything else (a press's ack too)."""
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("test") is not True:
        return None
    seq = body.get("seq")
    return seq if isinstance(seq, int) else None


def gesture(presses, held_ms, allowed=TEST_GESTURES[DEFAULT_GESTURE]):
    """"test" or "press" for what her finger did: `presses` how many presses followed one another within
    DOUBLE_PRESS_MS, `held_ms` how long the longest was held. Only a clean test gesture is a test: one press held
    LONG_PRESS_MS or more, or exactly two short presses. Three or more (pressing again and again), or two where
    one was held, are a press."""
    if presses == 1 and held_ms >= LONG_PRESS_MS and "long" in allowed:
        return "test"
    if presses == 2 and held_ms < LONG_PRESS_MS and "double" in allowed:
        return "test"
    return "press"


def tls_context(ssl_module, ca_der):
    """A TLS client context that trusts only the broker's CA (`ca_der`, the DER bytes flashed as ca.der) and
    refuses a broker without a certificate from it. Works with MicroPython's `ssl` (1.23+) and CPython's."""
    context = ssl_module.SSLContext(ssl_module.PROTOCOL_TLS_CLIENT)
    context.verify_mode = ssl_module.CERT_REQUIRED
    context.load_verify_locations(cadata=ca_der)
    return context


class Sequence:
    """seq rises with every message, across reboots: `store` keeps the last one used (NVS on the ESP32)."""

    def __init__(self, store):
        self.store = store

    def next(self):
        seq = self.store.load() + 1
        self.store.save(seq)  # saved before sending: a reboot mid-send never reuses it
        return seq


class PendingPress:
    """A press sent and not yet acknowledged: when to send it again, and whether an ack settles it."""

    def __init__(self, seq, topic_, payload, now, ack_timeout=ACK_TIMEOUT_S):
        self.seq, self.topic, self.payload = seq, topic_, payload
        self.attempts = 1
        self.due = now + BACKOFF_S[0]
        self.sms_at = now + ack_timeout
        self.sms_sent = False

    def sms_due(self, now):
        """Once, when the MQTT ack has not come within ack_timeout: send the press by SMS too (MQTT goes on)."""
        return not self.sms_sent and now >= self.sms_at

    def retry_due(self, now):
        return now >= self.due

    def sent_again(self, now):
        self.attempts += 1
        self.due = now + BACKOFF_S[min(self.attempts - 1, len(BACKOFF_S) - 1)]

    def settled_by(self, ack_payload):
        seq = acked_seq(ack_payload)
        return seq is not None and seq >= self.seq


class PendingTest(PendingPress):
    """A test sent and not yet acknowledged as a test: only `{"seq": its seq, "test": true}` settles it. A test
    never goes by SMS (the SMS path carries presses only)."""

    def sms_due(self, now):
        return False

    def settled_by(self, ack_payload):
        return acked_test(ack_payload) == self.seq
