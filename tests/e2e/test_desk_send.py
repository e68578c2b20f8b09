""" "Send now" from the desk of a real `digest serve` process (issue 24): the send runs as a
process of its own under the send lease, so killing `serve` (what a restart does under
KillMode=process) does not stop it: every subscriber gets the issue exactly once and the issue
finishes. While it runs, the desk tells a second sender who holds the lease."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import httpx
import pytest

from digest.config.load import load_config
from digest.store import lease
from digest.store.database import open_database
from tests.issues.test_send import add_subscribers, statuses
from tests.support.desk import NAME, PASSWORD, add_admin, csrf_of, desk_config
from tests.support.processes import Digest
from tests.support.smtp_server import SMTPServer, free_port

READERS = 60
RATE = 20  # messages a second: the send lasts about three seconds, long enough to kill serve


@pytest.mark.slow
def test_a_send_started_from_the_desk_outlives_serve(tmp_path: Path, database_url: str) -> None:
    with SMTPServer() as smtp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        config = desk_config(tmp_path, database_url, smtp.port, base)
        path = config.file
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("smtp:\n", f"smtp:\n  rate_per_second: {RATE}\n"), "utf-8")
        config = load_config(path, environ={})
        database = open_database(config.database_url)
        add_admin(database)
        add_subscribers(config, READERS)
        serve = Digest(path, "serve", "--port", str(port))
        try:
            with httpx.Client(base_url=base, headers={"Origin": base}) as http:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        http.get("/admin/login")
                        break
                    except httpx.ConnectError:
                        assert time.monotonic() < deadline, "digest serve did not start"
                        time.sleep(0.1)
                answer = http.post("/admin/login", data={"name": NAME, "password": PASSWORD})
                assert answer.status_code == 303
                token = csrf_of(http.get("/admin/next/send").text)
                started = http.post("/admin/next/send", data={"csrf": token})
                assert started.status_code == 303
                assert "/admin/next/progress" in started.headers["location"]
                # the send holds the lease: a second sender is told who
                deadline = time.monotonic() + 30
                while (holder := lease.current_holder(database, lease.SEND_LEASE)) is None:
                    assert time.monotonic() < deadline, "the send never took the lease"
                    time.sleep(0.05)
                again = http.get("/admin/next/send?locale=en").text
                assert re.search(r"Another send is running: [^<]*" + re.escape(holder.name), again)
                second = http.post("/admin/next/send", data={"csrf": token})
                assert "problem=busy" in second.headers["location"]
                assert holder.name in http.get(second.headers["location"]).text
            # serve dies as a restart kills it (KillMode=process: the main process alone)
            serve.process.send_signal(signal.SIGKILL)
            serve.process.wait(timeout=30)
            assert len(smtp.mailbox.messages) < READERS  # it was still sending
            smtp.mailbox.wait_for(READERS, timeout=120)
            deadline = time.monotonic() + 60
            while lease.current_holder(database, lease.SEND_LEASE) is not None:
                assert time.monotonic() < deadline, "the send did not finish"
                time.sleep(0.1)
        finally:
            if serve.process.poll() is None:
                serve.process.kill()
                serve.process.wait(timeout=30)
    recipients = smtp.mailbox.recipients()
    assert sorted(recipients) == sorted(f"reader{n}@example.com" for n in range(READERS))
    assert set(statuses(config).values()) == {"sent"}
    database.dispose()
