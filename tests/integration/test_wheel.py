"""alertd installs whole: the wheel pip builds carries the migrations and both web apps, and a venv outside the
checkout migrates an empty database and serves /app/ and /console/ from it.

The fresh venv gets the wheel alone (`--no-deps`); the libraries come from the test venv's site-packages through a
path file, so the test needs no network and alertd itself can only come from the wheel (the checkout is not on the
path, and the test venv's editable install is never activated there).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from alertd.local.services import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = Path(sys.executable)


def _run(*args, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv outside the checkout with the wheel installed; its `alertd` command."""
    where = tmp_path_factory.mktemp("wheel")
    # From a copy of the files git tracks: setuptools builds in the source folder, and a build/ left there by an
    # earlier run would put files into the wheel that the tree no longer has.
    source = where / "source"
    for name in subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0"):
        if name and (ROOT / name.decode()).is_file():
            (source / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name.decode(), source / name.decode())
    _run(PYTHON, "-m", "pip", "wheel", "--no-deps", "-q", "-w", where / "dist", source, cwd=where)
    [wheel] = (where / "dist").glob("alertd-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("alertd/store/migrations/0001_") for n in names), "no migrations in the wheel"
    assert "alertd/channels/app/site/index.html" in names and "alertd/channels/console/site/index.html" in names
    venv = where / "venv"
    _run(PYTHON, "-m", "venv", venv, cwd=where)
    _run(venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel, cwd=where)
    site = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    (site / "libraries-of-the-test-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin" / "alertd"


def _env(database_url: str, **more: str) -> dict:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("ALERTD_", "PYTHON"))}
    return {**keep, "ALERTD_DATABASE_URL": database_url, **more}


async def test_the_wheel_alone_migrates_an_empty_database_and_serves_both_web_apps(installed, postgres, mosquitto,
                                                                                  tmp_path):
    admin = await asyncpg.connect(postgres.dsn())
    await admin.execute("CREATE DATABASE from_the_wheel")
    await admin.close()
    url = postgres.dsn("from_the_wheel")
    try:
        origin = _run(installed.parent / "python", "-c", "import alertd; print(alertd.__file__)", cwd=tmp_path,
                      env=_env(url)).stdout
        assert str(ROOT) not in origin and "site-packages" in origin, origin
        _run(installed, "migrate", cwd=tmp_path, env=_env(url))
        conn = await asyncpg.connect(url)
        try:
            applied = await conn.fetchval("SELECT count(*) FROM schema_migrations")
            shipped = len(list((ROOT / "alertd" / "store" / "migrations").glob("*.sql")))
            assert applied == shipped > 10
            assert await conn.fetchval("SELECT to_regclass('alerts') IS NOT NULL")
        finally:
            await conn.close()

        port = free_port()
        env = _env(url, ALERTD_JWT_SECRET="wheel-" + "x" * 40, ALERTD_HTTP_PORT=str(port),
                   ALERTD_MQTT_URL=mosquitto.service_url, ALERTD_PUBLIC_URL=f"http://127.0.0.1:{port}")
        with open(tmp_path / "serve.log", "wb") as log:
            proc = subprocess.Popen([str(installed), "serve"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                    stderr=log)
        try:
            await asyncio.get_running_loop().run_in_executor(None, wait_port, port, 30)
            async with aiohttp.ClientSession() as http:
                for path, marker in (("/app/", "<html"), ("/console/", "<html"), ("/app/app.js", "")):
                    async with http.get(f"http://127.0.0.1:{port}{path}") as resp:
                        body = await resp.text()
                        assert resp.status == 200, (path, resp.status, body[:200])
                        assert marker in body.lower() and len(body) > 200
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:  # the database and the broker both answer
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                        if resp.status == 200:
                            break
                    await asyncio.sleep(0.1)
                assert resp.status == 200, (tmp_path / "serve.log").read_text()[-2000:]
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    finally:
        admin = await asyncpg.connect(postgres.dsn())
        await admin.execute("DROP DATABASE IF EXISTS from_the_wheel WITH (FORCE)")
        await admin.close()
