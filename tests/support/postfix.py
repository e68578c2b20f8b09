"""A throwaway Postfix from Debian's package, for the whole-loop bounce test.

Configured entirely in a temporary folder (`postfix -c DIR`: its own main.cf and master.cf,
queue, data and virtual-mailbox folders, `maillog_file`), listening on a free loopback port,
no chroot, no DNS. The domain `digest.test` is a virtual mailbox domain whose known mailboxes
are Maildirs under `vmail/`; `smtpd_reject_unlisted_recipient = no` makes it accept mail for
unknown users and then bounce it, as a relay does, with a DSN to the envelope sender, which
`recipient_delimiter = +` delivers to the `bounces` Maildir whatever its VERP token. Postfix
needs root (its master changes user), so tests that use it run as root, as CI does. Stopped
with `postfix -c DIR stop`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

POSTFIX = "/usr/sbin/postfix"
DOMAIN = "digest.test"
SERVICES = """\
{listen} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
virtual   unix  - n n - - virtual
lmtp      unix  - - n - - lmtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostfixServer:
    """`mailboxes`: the known local parts of digest.test (each gets a Maildir)."""

    def __init__(self, mailboxes: tuple[str, ...] = ("bounces",)) -> None:
        if not os.path.exists(POSTFIX):
            raise RuntimeError("Postfix is not installed: run scripts/system-deps (postfix)")
        self.root = Path(tempfile.mkdtemp(prefix="digest-postfix-"))
        self.config_dir = self.root / "etc"
        self.port = _free_port()
        self.mailboxes = mailboxes
        self.started = False

    def maildir(self, name: str) -> Path:
        return self.root / "vmail" / name

    @property
    def maillog(self) -> Path:
        return self.root / "maillog"

    def _configure(self) -> None:
        owner, daemon = pwd.getpwnam("nobody"), pwd.getpwnam("postfix")
        os.chmod(self.root, 0o755)
        self.config_dir.mkdir()
        (self.root / "queue").mkdir(mode=0o755)
        (self.root / "data").mkdir(mode=0o700)
        os.chown(self.root / "data", daemon.pw_uid, daemon.pw_gid)
        vmail = self.root / "vmail"
        vmail.mkdir()
        for name in self.mailboxes:
            for sub in ("new", "cur", "tmp"):
                (vmail / name / sub).mkdir(parents=True)
        for path in [vmail, *vmail.rglob("*")]:
            os.chown(path, owner.pw_uid, owner.pw_gid)
        (self.config_dir / "vmailbox").write_text(
            "".join(f"{name}@{DOMAIN} {name}/\n" for name in self.mailboxes)
        )
        (self.config_dir / "master.cf").write_text(SERVICES.format(listen=f"127.0.0.1:{self.port}"))
        (self.config_dir / "main.cf").write_text(
            f"""\
compatibility_level = 3.6
queue_directory = {self.root}/queue
data_directory = {self.root}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {self.maillog}
maillog_file_prefixes = {self.root}
myhostname = mx.{DOMAIN}
mydomain = {DOMAIN}
myorigin = {DOMAIN}
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_reject_unlisted_recipient = no
smtpd_relay_restrictions = permit_mynetworks, reject
disable_dns_lookups = yes
smtp_dns_support_level = disabled
alias_maps =
alias_database =
local_recipient_maps =
recipient_delimiter = +
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_base = {vmail}
virtual_mailbox_maps = texthash:{self.config_dir}/vmailbox
virtual_minimum_uid = 1
virtual_uid_maps = static:{owner.pw_uid}
virtual_gid_maps = static:{owner.pw_gid}
bounce_queue_lifetime = 0
maximal_queue_lifetime = 1h
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"""
        )

    def _postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [POSTFIX, "-c", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start(self) -> None:
        self._configure()
        started = self._postfix("start")
        if started.returncode != 0:
            raise RuntimeError(f"the test Postfix did not start: {started.stderr}{self.log()}")
        self.started = True
        deadline = time.monotonic() + 60
        while True:  # ready when smtpd greets (a hang guard, not a timing)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                    if sock.recv(64).startswith(b"220"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the test Postfix never greeted: {self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""

    def wait_for_mail(self, name: str, count: int = 1, timeout: float = 120) -> list[Path]:
        """The messages delivered to Maildir `name`, once there are `count` (a hang guard)."""
        deadline = time.monotonic() + timeout
        while True:
            found = sorted((self.maildir(name) / "new").iterdir())
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, (
                f"no mail in {name} after {timeout} s:\n{self.log()}"
            )
            time.sleep(0.1)

    def stop(self) -> None:
        if self.started:
            self._postfix("stop")
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)
