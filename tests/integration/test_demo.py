"""`alertd demo` as a new user runs it: its own PostgreSQL and Mosquitto, a seeded region, and lines to copy. Each
printed line is run as printed, by a shell, from another folder: the curl line raises an alert, the officer's curl
line sees it dispatched to its post, the simulator line presses the sample button, the enrolment code enrols a
phone app. One demo serves the whole module; the tests that need their own data folder start their own."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from alertd.local.services import free_port

ALERTD = Path(sys.executable).parent / "alertd"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def homes():
    """Makes her home folders outside pytest's tmp root: a pytest starting elsewhere on the machine resets that root
    to mode 0700, and PostgreSQL (its own user) could no longer reach a data folder inside it."""
    made = []

    def make() -> Path:
        path = Path(tempfile.mkdtemp(prefix="alertd-newcomer-"))
        path.chmod(0o755)
        made.append(path)
        return path

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def newcomer_env(home: Path, **settings: str) -> dict[str, str]:
    """Her shell: no ALERTD_* or TWILIO_* settings but the ones given, her own home folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERTD_", "TWILIO_"))}
    return {**env, "HOME": str(home), **settings}


def start_demo(cwd: Path, env: dict[str, str], *argv: str) -> subprocess.Popen:
    """`alertd demo` in cwd; its stderr (the service's log) goes to cwd/demo-PID.log, so a full pipe never stops it."""
    log = open(cwd / f"demo-{time.monotonic_ns()}.log", "w+")
    process = subprocess.Popen([str(ALERTD), "demo", *argv], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=log,
                               text=True)
    process.log = log
    return process


def stderr_of(process: subprocess.Popen) -> str:
    process.log.flush()
    return Path(process.log.name).read_text()


def read_announcement(process: subprocess.Popen) -> str:
    """What the demo prints once it serves: everything up to the blank line after its last section."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line == "\n" and any(ln.startswith("Press the sample button") for ln in lines):
            return "".join(lines)
    raise AssertionError(f"demo ended before serving: {''.join(lines)[-2000:]} {stderr_of(process)[-3000:]}")


def line_after(text: str, heading: str) -> str:
    """The command printed on the line below the line starting with heading."""
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith(heading))
    return lines[at + 1].strip()


def shell(line: str, cwd: Path, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a printed line as she pastes it into bash."""
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def stop(process: subprocess.Popen) -> int:
    """SIGTERM, as Ctrl-C; its exit status."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(60)
    finally:
        process.stdout.close()
        process.log.close()


@pytest.fixture(scope="module")
def demo(homes):
    """One demo started as she starts it, in a folder of her own, with ALERTD_HTTP_PORT set."""
    home = homes()
    http_port = free_port()
    env = newcomer_env(home, ALERTD_HTTP_PORT=str(http_port))
    process = start_demo(home, env)
    try:
        text = read_announcement(process)
        yield {"text": text, "home": home, "env": env, "http_port": http_port, "process": process}
    finally:
        assert stop(process) == 0


def test_demo_honours_alertd_http_port_and_prints_what_she_needs(demo):
    text = demo["text"]
    assert text.startswith("alertd demo is running (Ctrl-C stops it)")
    http = f"http://127.0.0.1:{demo['http_port']}"
    assert f"  http      {http}\n" in text and f"export ALERTD_HTTP_PORT={demo['http_port']}\n" in text
    for role in ("device", "officer", "admin", "engineer"):
        assert re.search(rf"^  {role} token: \S+$", text, re.M), role
    assert (demo["home"] / ".alertd").is_dir()  # its own data folder, in the folder it was started from
    with urllib.request.urlopen(f"{http}/readyz", timeout=10) as resp:
        assert resp.status == 200


def test_the_printed_curl_lines_raise_an_alert_the_officer_then_sees(demo):
    raised = shell(line_after(demo["text"], "Raise an alert"), demo["home"], demo["env"])
    assert raised.returncode == 0, raised.stderr
    alert_id = json.loads(raised.stdout)["alert_id"]
    officer_line = line_after(demo["text"], "See it dispatched, as the sample officer")
    assert f"127.0.0.1:{demo['http_port']}/v1/dispatches" in officer_line
    seen = shell(officer_line, demo["home"], demo["env"])
    assert seen.returncode == 0, seen.stderr
    assert [d["alert_id"] for d in json.loads(seen.stdout)["items"]] == [alert_id]  # the officer's post got it
    place = json.loads(seen.stdout)["items"][0]["place"]  # the demo's invented gazetteer names where she is
    assert place["distance_m"] < 100_000 and place["name"] in place["text"]


def test_the_printed_simulator_line_presses_the_sample_button(demo):
    press = line_after(demo["text"], "Press the sample button")
    result = shell(press, demo["home"], demo["env"])  # from her folder, not the source tree
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["seq"] >= 1 and "no ack" not in result.stderr


def test_the_simulator_with_a_wrong_secret_says_why_no_ack_comes(demo):
    press = line_after(demo["text"], "Press the sample button")
    wrong = re.sub(r"--secret \S+", "--secret " + "0" * 64, press) + " --wait 3"
    started = time.monotonic()
    result = shell(wrong, demo["home"], demo["env"])
    assert result.returncode == 1 and time.monotonic() - started < 20
    said = result.stderr.splitlines()
    assert said[0].startswith("simulator: no ack for press") and "wrong --secret" in said[0] and "bad_mac" in said[0]
    assert sum("no ack for press" in ln for ln in said) == 1  # said once, after the first unanswered try
    assert "was not acknowledged in 3 s" in said[-1]
    help_text = shell(press.split(" press ")[0] + " press --help", demo["home"], demo["env"]).stdout
    assert "--wait WAIT seconds to keep retrying" in " ".join(help_text.split())


def test_the_printed_enrolment_code_enrols_the_phone_app(demo):
    match = re.search(r"open (\S+/app/) and enrol it with the code (\S{4}-\S{4})", demo["text"])
    assert match and match[1] == f"http://127.0.0.1:{demo['http_port']}/app/"
    origin = match[1].removesuffix("/app/")
    request = urllib.request.Request(f"{origin}/v1/enrol", data=json.dumps({"code": match[2]}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200 and json.loads(resp.read())["token"]


def test_a_second_demo_on_the_same_folder_says_where_the_first_runs(demo):
    started = time.monotonic()
    second = subprocess.run([str(ALERTD), "demo"], cwd=demo["home"], env=demo["env"], capture_output=True,
                            text=True, timeout=60)
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert second.stderr.strip() == (
        f"alertd: another alertd demo is running on {demo['home'] / '.alertd'} (pid {demo['process'].pid}, serving "
        f"http://127.0.0.1:{demo['http_port']}): use that one, stop it first (Ctrl-C in its terminal, or kill "
        f"{demo['process'].pid}), or give this one another --data-dir")
    assert time.monotonic() - started < 15  # said at once, not after a failed PostgreSQL start
    assert demo["process"].poll() is None  # the first one is untouched


def test_a_busy_alertd_http_port_is_named(tmp_path, demo):
    env = newcomer_env(tmp_path, ALERTD_HTTP_PORT=str(demo["http_port"]))  # the running demo has it
    result = subprocess.run([str(ALERTD), "demo", "--data-dir", str(tmp_path / "d")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"alertd: ALERTD_HTTP_PORT={demo['http_port']} is taken by another program" in result.stderr


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _ports(text: str) -> dict[str, int]:
    return {name: int(re.search(rf"^  {name} +\S+?:(\d+)", text, re.M)[1]) for name in ("http", "database", "mqtt")}


@pytest.fixture(scope="module")
def prepared(homes):
    """A data folder set up the way a script sets one up: `scripts/demo.sh --json --no-serve` (setup.sh has run
    once before, as it has on any machine where the suite runs)."""
    home = homes()
    env = newcomer_env(home)
    setup = subprocess.run([str(REPO / "scripts/setup.sh")], env=env, capture_output=True, text=True, timeout=900)
    assert setup.returncode == 0, setup.stderr
    data = home / "data"
    result = subprocess.run([str(REPO / "scripts/demo.sh"), "--json", "--no-serve", "--data-dir", str(data)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return {"home": home, "env": env, "data": data, "result": result}


def test_demo_sh_json_is_pure_json_and_installs_nothing_twice(prepared):
    result = prepared["result"]
    doc = json.loads(result.stdout)  # the whole of stdout is the one document
    assert doc["env"]["ALERTD_DATA_DIR"] == str(prepared["data"]) and doc["tokens"]["officer"]
    assert "setup: installing the alertd package" not in result.stderr  # setup.sh ran just before: nothing to do


def test_no_serve_says_nothing_runs_and_nothing_does(prepared):
    doc = json.loads(prepared["result"].stdout)
    assert doc["serving"] is False
    ports = [int(doc["urls"]["http"].rsplit(":", 1)[1]), int(doc["urls"]["mqtt"].rsplit(":", 1)[1]),
             int(doc["urls"]["database"].rsplit(":", 1)[1].split("/")[0])]
    assert not any(_listening(p) for p in ports)
    assert not (prepared["data"] / "postgres/pgdata/postmaster.pid").exists()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_after_a_kill_9_a_restart_stops_the_orphans_and_keeps_the_ports(prepared):
    home, env, data = prepared["home"], prepared["env"], prepared["data"]
    doc = json.loads(prepared["result"].stdout)
    recorded = {"http": int(doc["urls"]["http"].rsplit(":", 1)[1]),
                "database": int(doc["urls"]["database"].rsplit(":", 1)[1].split("/")[0]),
                "mqtt": int(doc["urls"]["mqtt"].rsplit(":", 1)[1])}
    first = start_demo(home, env, "--data-dir", str(data))
    assert _ports(read_announcement(first)) == recorded  # the ports of the last run, so exports keep working
    first.kill()
    first.wait(30)
    first.stdout.close()
    first.log.close()
    postmaster = int((data / "postgres/pgdata/postmaster.pid").read_text().split()[0])
    mosquitto = json.loads((data / "mosquitto.pid").read_text())["pid"]
    assert _alive(postmaster) and _alive(mosquitto)  # what a kill -9 leaves behind

    again = subprocess.run([str(ALERTD), "demo", "--no-serve", "--data-dir", str(data)], cwd=home, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "stopped the postgresql and mosquitto a killed earlier run left behind" in again.stderr
    assert not _alive(postmaster) and not _alive(mosquitto)
    assert again.stdout.startswith(f"alertd demo is set up in {data} but not running (--no-serve)")
    assert _ports(again.stdout) == recorded  # the orphans' ports, free again, taken again
    assert not any(_listening(p) for p in recorded.values())


def test_the_readme_quick_start_shows_what_the_demo_prints(demo):
    """Every line of the README's excerpt is printed, in that order (… stands for what differs per run)."""
    readme = (REPO / "README.md").read_text()
    excerpt = readme.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    printed = demo["text"].replace(f"127.0.0.1:{demo['http_port']}", "127.0.0.1:8080").splitlines()
    at = 0
    for line in filter(None, excerpt):
        pattern = re.compile(".*?".join(re.escape(part) for part in line.split("…")) + "$")
        found = next((i for i in range(at, len(printed)) if pattern.match(printed[i])), None)
        assert found is not None, f"the README shows a line the demo does not print: {line!r}"
        at = found + 1
