"""alertd wearable button firmware (MicroPython on an ESP32).

Wakes from deep sleep on the button (press, or her test gesture: a long press of 2 s or more, or a double press) or
on a timer (heartbeat), joins Wi-Fi, sends one signed message
with umqtt.simple (1.4+: TLS with the broker's CA pinned) at QoS 1, and for a press keeps retrying with backoff
until alertd's app-level ack arrives, then gives one discreet haptic pulse and sleeps again. Two paths (alertd
docs/buttons.md): a second broker address (`mqtt_host2`) when the first does not answer, and, when a press is not
acknowledged within `ack_timeout` seconds (default 20), the same press by SMS to `sms_number` through the GSM
modem, as one compact signed message; MQTT goes on meanwhile, and alertd makes one alert of whichever copy arrives
first. A test is sent and retried like a press (never by SMS) until alertd acknowledges it as a test; the LED then
blinks "all good" (three short blinks), or "failed" (one long) if no ack came. The protocol logic is in protocol.py (tested under CPython); this file is only the hardware around it.
Flash config.json (from `alertd buttons provision`) and the broker's CA as ca.der.
"""

import ssl
import time

import esp32
import machine
import network
import protocol
import ujson
from umqtt.simple import MQTTClient

BUTTON_PIN, HAPTIC_PIN, BATTERY_PIN, LED_PIN = 0, 13, 35, 2
HEARTBEAT_S = 3600
GIVE_UP_S = 15 * 60  # after this the press is abandoned (the ts would be too old to be accepted)
TEST_GIVE_UP_S = 60  # a test not acknowledged by then blinks "failed"


class NvsStore:
    """The last seq, in non-volatile storage: survives deep sleep, reboots and battery swaps."""

    def __init__(self):
        self.nvs = esp32.NVS("alertd")

    def load(self):
        try:
            return self.nvs.get_i32("seq")
        except OSError:
            return 0

    def save(self, seq):
        self.nvs.set_i32("seq", seq)
        self.nvs.commit()


def battery_fraction():
    """0..1 from the battery divider (3.3 V full scale, 2:1 divider, 3.3 V empty to 4.2 V full)."""
    adc = machine.ADC(machine.Pin(BATTERY_PIN))
    adc.atten(machine.ADC.ATTN_11DB)
    volts = adc.read_uv() * 2 / 1_000_000
    return max(0.0, min(1.0, (volts - 3.3) / 0.9))


def gps_fix(timeout_ms=3000):
    """(lat, lon, acc) from an NMEA GPS on UART2 if one is fitted and has a fix, else None."""
    try:
        uart = machine.UART(2, baudrate=9600, timeout=timeout_ms)
    except (ValueError, OSError):
        return None
    deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
    while time.ticks_diff(deadline, time.ticks_ms()) > 0:
        line = uart.readline()
        if not line or not line.startswith(b"$GPGGA"):
            continue
        f = line.decode().split(",")
        if len(f) > 8 and f[6] not in ("", "0") and f[2] and f[4]:
            lat = int(f[2][:2]) + float(f[2][2:]) / 60
            lon = int(f[4][:3]) + float(f[4][3:]) / 60
            lat, lon = (-lat if f[3] == "S" else lat), (-lon if f[5] == "W" else lon)
            return lat, lon, float(f[8] or 5) * 5.0  # HDOP x 5 m: a rough accuracy
    return None


def pulse(ms=120):
    motor = machine.Pin(HAPTIC_PIN, machine.Pin.OUT)
    motor.value(1)
    time.sleep_ms(ms)
    motor.value(0)


def blink(pattern):
    led = machine.Pin(LED_PIN, machine.Pin.OUT)
    for on_ms, off_ms in pattern:
        led.value(1)
        time.sleep_ms(on_ms)
        led.value(0)
        time.sleep_ms(off_ms)


def read_gesture(cfg):
    """What her finger did since the button woke the board: "press" or "test" (protocol.gesture decides). Counts
    presses that follow one another within DOUBLE_PRESS_MS and how long the longest was held; a press still held
    at LONG_PRESS_MS is decided at once (she is not kept waiting)."""
    allowed = protocol.TEST_GESTURES.get(cfg.get("test_gesture", protocol.DEFAULT_GESTURE), ())
    if not allowed:
        return "press"
    pin = machine.Pin(BUTTON_PIN, machine.Pin.IN, machine.Pin.PULL_UP)
    presses, held = 0, 0
    while True:
        presses += 1
        down = time.ticks_ms()
        while pin.value() == 0 and time.ticks_diff(time.ticks_ms(), down) < protocol.LONG_PRESS_MS + 50:
            time.sleep_ms(10)
        held = max(held, time.ticks_diff(time.ticks_ms(), down))
        if presses > 2 or held >= protocol.LONG_PRESS_MS:
            break
        up = time.ticks_ms()
        while pin.value() == 1 and time.ticks_diff(time.ticks_ms(), up) < protocol.DOUBLE_PRESS_MS:
            time.sleep_ms(10)
        if pin.value() == 1:
            break  # no further press: the gesture is over
    return protocol.gesture(presses, held, allowed)


def wifi(cfg):
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    if not sta.isconnected():
        sta.connect(cfg["wifi_ssid"], cfg["wifi_password"])
        for _ in range(100):
            if sta.isconnected():
                break
            time.sleep_ms(100)
    return sta.isconnected()


def broker_tls(cfg):
    """TLS with the broker's CA pinned (ca.der, flashed beside config.json): her location and the button's
    password never cross Wi-Fi or GSM in clear. Only a lab broker may be plain ("mqtt_tls": false)."""
    if not cfg.get("mqtt_tls", True):
        return None
    with open(cfg.get("ca_file", "ca.der"), "rb") as f:
        return protocol.tls_context(ssl, f.read())


def send_sms(cfg, text):
    """Send text to the service number through the GSM modem on UART1 (SIM800-class, AT commands); True once
    the modem reports the message accepted."""
    uart = machine.UART(1, baudrate=9600, tx=cfg.get("modem_tx", 17), rx=cfg.get("modem_rx", 16), timeout=2000)
    for command in (b"AT\r", b"AT+CMGF=1\r", b'AT+CMGS="' + cfg["sms_number"].encode() + b'"\r'):
        uart.write(command)
        time.sleep_ms(300)
        uart.read()
    uart.write(text.encode() + b"\x1a")
    time.sleep_ms(5000)
    return b"+CMGS" in (uart.read() or b"")


class Press:
    """One press across every attempt: its message, and whether the SMS copy went out."""

    def __init__(self, cfg, event, seq):
        self.cfg, self.event, self.seq = cfg, event, seq
        self.ts = time.time() + cfg.get("epoch_offset", 946684800)  # MicroPython's epoch is 2000-01-01
        self.loc = gps_fix() if event == "press" and cfg.get("gps") else None
        self.topic, self.payload = protocol.message(cfg["device_id"], cfg["secret"], event, seq, self.ts,
                                                    bat=battery_fraction(), loc=self.loc)
        pending = protocol.PendingTest if event == "test" else protocol.PendingPress
        self.pending = pending(seq, self.topic, self.payload, time.time(),
                               cfg.get("ack_timeout", protocol.ACK_TIMEOUT_S))

    def sms_if_due(self):
        """The second path: once, when no MQTT ack came within ack_timeout (however MQTT is doing)."""
        if self.event == "press" and self.cfg.get("sms_number") and self.pending.sms_due(time.time()):
            text = protocol.sms_text(self.cfg["device_id"], self.cfg["secret"], self.seq, self.ts, loc=self.loc)
            try:
                self.pending.sms_sent = send_sms(self.cfg, text)
            except (OSError, ValueError):
                pass  # no modem answer: tried again on the next pass


def send(cfg, press, host):
    """Connect to `host`, publish (QoS 1), and for a press or test wait for the app-level ack with backoff (a press
    sends its SMS copy when it is due); True once acked."""
    acked = []
    client = MQTTClient(cfg["device_id"], host, port=cfg.get("mqtt_port", 8883),
                        user=cfg["username"], password=cfg["password"], keepalive=60, ssl=broker_tls(cfg))
    client.set_callback(lambda _t, msg: acked.append(msg))
    client.connect(clean_session=False)
    topic_ack = protocol.topic(cfg["device_id"], "ack")
    client.subscribe(topic_ack, qos=1)
    client.publish(press.topic, press.payload, qos=1)
    if press.event == "heartbeat":
        client.disconnect()
        return True
    pending = press.pending
    started = time.time()
    give_up = TEST_GIVE_UP_S if press.event == "test" else GIVE_UP_S
    while time.time() - started < give_up:
        client.check_msg()
        if any(pending.settled_by(m) for m in acked):
            client.disconnect()
            return True
        if pending.retry_due(time.time()):
            client.publish(press.topic, press.payload, qos=1)
            pending.sent_again(time.time())
        press.sms_if_due()
        time.sleep_ms(100)
    client.disconnect()
    return False


def run():
    with open("config.json") as f:
        cfg = ujson.load(f)
    seqs = protocol.Sequence(NvsStore())
    pressed = machine.wake_reason() == machine.EXT0_WAKE
    event = read_gesture(cfg) if pressed else "heartbeat"
    press = Press(cfg, event, seqs.next())
    hosts = [cfg["mqtt_host"]] + ([cfg["mqtt_host2"]] if cfg.get("mqtt_host2") else [])
    acked = False
    for attempt in range(10):
        try:
            if wifi(cfg) and send(cfg, press, hosts[attempt % len(hosts)]):
                acked = True
                if event == "press":
                    pulse()
                break
        except OSError:
            # lost Wi-Fi or broker: same seq, same press, the other broker next; the SMS copy when it is due
            press.sms_if_due()
            time.sleep(min(2 ** attempt, 30))
        press.sms_if_due()
        if event == "test" and attempt >= 1:
            break  # she is looking at the button: two tries, then "failed"
    if event == "test":
        blink(protocol.ALL_GOOD if acked else protocol.FAILED)
    button = machine.Pin(BUTTON_PIN, machine.Pin.IN, machine.Pin.PULL_UP)
    esp32.wake_on_ext0(pin=button, level=esp32.WAKEUP_ALL_LOW)
    machine.deepsleep(HEARTBEAT_S * 1000)


run()
