"""The deployment examples in examples/deploy/ are checked by the tools that will read them:
the systemd units by `systemd-analyze verify` (and `security`), with real paths for the
binary and the files they name; the nginx site by `nginx -t` with test certificates, then by
a real nginx in front of a real `digest serve`, over HTTPS on loopback."""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from digest.config.load import load_config
from tests.issues.test_send import add_subscribers, statuses, write_config
from tests.support import paths
from tests.support.processes import Digest, gone
from tests.support.smtp_server import CountingServer, free_port, self_signed

ROOT = paths.ROOT
DEPLOY = ROOT / "examples" / "deploy"
UNITS = DEPLOY / "systemd"
SITE = DEPLOY / "nginx" / "digest.conf"
BINARY = "/usr/local/bin/digest"
CONFIG = "/var/lib/digest/config.yaml"
STATE = "/var/lib/digest"
CREDENTIAL = "/etc/digest/smtp-password"
HARDENING = (
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "PrivateTmp=yes",
    "StateDirectory=digest",
    "CapabilityBoundingSet=",
)


def tool(name: str) -> str:
    found = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if found is None:
        pytest.fail(f"{name} is not installed: run scripts/system-deps")
    return found


def settings(unit: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example units with real paths: this environment's `digest`, a config, the state
    folder and the credential file they name."""
    tmp = tmp_path_factory.mktemp("units")
    state = tmp / "state"
    state.mkdir()
    config = write_config(state, f"sqlite:///{state / 'digest.sqlite3'}", 25)
    credential = tmp / "smtp-password"
    credential.write_text("s3cret\n", "utf-8")
    binary = Path(sys.executable).parent / "digest"
    assert binary.is_file()
    folder = tmp / "units"
    folder.mkdir()
    for unit in UNITS.glob("*.service"):
        text = unit.read_text("utf-8")
        for placeholder in (BINARY, CONFIG, CREDENTIAL, STATE):
            assert placeholder in text, f"{unit.name} no longer names {placeholder}"
        text = (
            text.replace(BINARY, str(binary))
            .replace(CONFIG, str(config))
            .replace(CREDENTIAL, str(credential))
            .replace(f"WorkingDirectory={STATE}", f"WorkingDirectory={state}")
        )
        (folder / unit.name).write_text(text, "utf-8")
    return folder


def instances(folder: Path) -> list[str]:
    return sorted(
        name.replace("@.service", "@1.service") for name in (p.name for p in folder.glob("*"))
    )


def test_the_units_pass_systemd_analyze_verify_without_a_warning(units: Path) -> None:
    names = instances(units)
    assert names == ["digest-schedule.service", "digest-serve.service", "digest-worker@1.service"]
    done = subprocess.run(
        [tool("systemd-analyze"), "verify", *(f"./{name}" for name in names)],
        cwd=units,
        capture_output=True,
        text=True,
        check=False,
    )
    # a key systemd does not understand is only a warning ("ignoring"): none is allowed
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr


def test_a_broken_unit_fails_the_check(units: Path, tmp_path: Path) -> None:
    """The check above can fail: a misspelt setting, or a binary that is not there."""
    for change in (
        ("KillMode=process", "KillMode=procces"),
        (str(Path(sys.executable).parent / "digest"), "/nonexistent/digest"),
    ):
        broken = tmp_path / "digest-serve.service"
        broken.write_text(
            (units / "digest-serve.service").read_text("utf-8").replace(*change), "utf-8"
        )
        done = subprocess.run(
            [tool("systemd-analyze"), "verify", "./digest-serve.service"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode != 0 or done.stderr, change


def test_the_units_are_hardened_alike(units: Path) -> None:
    """Each unit has the hardening the README promises, the three the same block of it, and
    systemd rates each one's exposure low."""
    blocks = set()
    for unit in UNITS.glob("*.service"):
        text = unit.read_text("utf-8")
        for line in HARDENING:
            assert line in text.splitlines(), f"{unit.name}: no {line}"
        blocks.add(text[text.index("StateDirectory=") : text.index("[Install]")])
    assert len(blocks) == 1
    for name in instances(units):
        done = subprocess.run(
            [tool("systemd-analyze"), "security", "--offline=yes", f"./{name}"],
            cwd=units,
            capture_output=True,
            text=True,
            check=False,
        )
        found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
        assert found and float(found.group(1)) <= 2.0, done.stdout[-400:]


def test_kill_modes_spare_a_send_started_by_serve_and_stop_the_others_whole() -> None:
    """KillMode: a restart of digest-serve signals serve alone, so a `digest send` it started
    (the web app's, later) goes on; the scheduler and workers are stopped whole, every
    process of a send told to finish the message it is sending (tests/test_attack_send.py
    sends that signal to a whole process group)."""
    modes = {unit.name: settings(unit.read_text("utf-8"))["KillMode"] for unit in UNITS.glob("*")}
    assert modes == {
        "digest-serve.service": ["process"],
        "digest-schedule.service": ["control-group"],
        "digest-worker@.service": ["control-group"],
    }


SERVE_LIKE = """
import subprocess, sys, time
child = subprocess.Popen(
    [sys.executable, "-m", "digest.cli", "--config", sys.argv[1], "send", "--yes"],
    start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
)
print(child.pid, flush=True)
time.sleep(600)
"""


def test_a_send_whose_parent_is_stopped_alone_finishes(tmp_path: Path) -> None:
    """What KillMode=process does on a restart of serve, done by hand: SIGTERM to the parent
    alone, mid-send. The `digest send` it started (in a session of its own, as the web app
    will start it) delivers every message once and finishes the issue."""
    count = 300
    with CountingServer(delay=0.002) as server:
        config = write_config(tmp_path, f"sqlite:///{tmp_path / 'digest.sqlite3'}", server.port)
        add_subscribers(load_config(config), count)
        parent = subprocess.Popen(
            [sys.executable, "-c", SERVE_LIKE, str(config)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert parent.stdout is not None
            child = int(parent.stdout.readline())
            server.wait(lambda s: s.accepted() >= 30)
            parent.send_signal(signal.SIGTERM)  # the main process only, as KillMode=process
            assert parent.wait(30) == -signal.SIGTERM
            assert server.accepted() < count, "the send had finished before its parent stopped"
            server.wait(lambda s: s.accepted() >= count, timeout=300)
            deadline = time.monotonic() + 120  # a hang guard, not a timing
            while not gone(child):
                assert time.monotonic() < deadline, "the orphaned send did not finish"
                time.sleep(0.05)
        finally:
            if parent.poll() is None:
                parent.kill()
                parent.wait()
    assert set(server.received.values()) == {1} and len(server.received) == count
    assert set(statuses(load_config(config)).values()) == {"sent"}


def test_each_units_command_line_is_one_digest_accepts(units: Path) -> None:
    for unit in units.glob("*.service"):
        [command] = settings(unit.read_text("utf-8"))["ExecStart"]
        args = shlex.split(command)
        done = subprocess.run(
            [*args, "--help"], cwd=units, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{unit.name}: {done.stdout}{done.stderr}"
        assert "Usage: digest" in done.stdout


# -- nginx ---------------------------------------------------------------------------------------

NGINX_MAIN = """\
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    include {root}/site.conf;
}}
"""


def nginx_site(root: Path, *, http: int = 80, https: int = 443, upstream: int = 8080) -> Path:
    """The example site with test certificates (and, for a real run, loopback ports), under
    a minimal main configuration of its own; returns that main file."""
    cert, key = self_signed(root)
    site = SITE.read_text("utf-8")
    for path in (
        "/etc/letsencrypt/live/news.example.com/fullchain.pem",
        "/etc/letsencrypt/live/news.example.com/privkey.pem",
    ):
        assert path in site
    site = site.replace("/etc/letsencrypt/live/news.example.com/fullchain.pem", str(cert)).replace(
        "/etc/letsencrypt/live/news.example.com/privkey.pem", str(key)
    )
    if (http, https, upstream) != (80, 443, 8080):
        site = re.sub(r"^\s*listen \[::\].*\n", "", site, flags=re.M)
        site = site.replace("listen 80;", f"listen 127.0.0.1:{http};")
        site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{https} ssl;")
        site = site.replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream};")
    (root / "site.conf").write_text(site, "utf-8")
    main = root / "nginx.conf"
    main.write_text(NGINX_MAIN.format(root=root), "utf-8")
    return main


def nginx_test(main: Path) -> subprocess.CompletedProcess[str]:
    root = main.parent
    return subprocess.run(
        [tool("nginx"), "-t", "-p", str(root), "-e", str(root / "error.log"), "-c", str(main)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_nginx_site_passes_nginx_t(tmp_path: Path) -> None:
    done = nginx_test(nginx_site(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr and "test is successful" in done.stderr
    assert "[warn]" not in done.stderr and "[emerg]" not in done.stderr


def test_nginx_t_fails_a_broken_site(tmp_path: Path) -> None:
    main = nginx_site(tmp_path)
    (tmp_path / "key.pem").write_text("not a key\n", "utf-8")
    assert nginx_test(main).returncode != 0


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[int, int, Path]]:
    """A real `digest serve` with the example nginx site in front of it, on loopback ports:
    (http port, https port, certificate)."""
    upstream, http, https = free_port(), free_port(), free_port()
    (tmp_path / "nginx").mkdir()
    main = nginx_site(tmp_path / "nginx", http=http, https=https, upstream=upstream)
    assert nginx_test(main).returncode == 0
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'digest.sqlite3'}", 25)
    serve = Digest(config, "serve", "--host", "127.0.0.1", "--port", str(upstream))
    root = main.parent
    nginx = subprocess.Popen(
        [
            tool("nginx"),
            "-p",
            str(root),
            "-e",
            str(root / "error.log"),
            "-c",
            str(main),
            "-g",
            "daemon off;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        serve.wait_for_line("Serving")
        deadline = time.monotonic() + 60  # a hang guard, not a timing
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{upstream}/", timeout=5)
                httpx.get(f"http://127.0.0.1:{http}/", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "nginx or digest serve did not start"
                time.sleep(0.1)
        yield http, https, root / "cert.pem"
    finally:
        nginx.terminate()
        nginx.wait(30)
        serve.process.terminate()
        serve.finish(60, output=False)


def test_nginx_serves_digest_over_https_redirects_http_and_hides_metrics(
    proxied: tuple[int, int, Path],
) -> None:
    http, https, cert = proxied
    trust = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(verify=trust, timeout=10) as client:
        page = client.get(
            f"https://localhost:{https}/subscribe", headers={"Host": "news.example.com"}
        )
        assert page.status_code == 200 and "<form" in page.text
        assert page.headers["strict-transport-security"] == "max-age=63072000"
        assert client.get(f"https://localhost:{https}/metrics").status_code == 404
        moved = client.get(
            f"http://127.0.0.1:{http}/u/token?x=1", headers={"Host": "news.example.com"}
        )
        assert moved.status_code == 301
        assert moved.headers["location"] == "https://news.example.com/u/token?x=1"
