"""Real `digest` processes for the tests: started, watched, signalled, reaped.

Output is read as it comes by background threads, so a test can wait for a line (an event it
observes) before it signals, instead of sleeping and hoping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import paths

ROOT = paths.ROOT


class Digest:
    """`digest --config CONFIG ARGS...` running in its own process (with `group`, leading a
    process group of its own)."""

    def __init__(
        self, config: Path, *args: str, env: dict[str, str] | None = None, group: bool = False
    ) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "digest.cli", "--config", str(config), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            process_group=0 if group else None,
        )
        self.lines: list[str] = []
        self.stdout: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stderr, self.lines)),
            threading.Thread(target=self._read, args=(self.process.stdout, self.stdout)),
        ]
        for reader in self._readers:
            reader.daemon = True
            reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self, stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._changed:
                into.append(line)
                self._changed.notify_all()
        with self._changed:  # the end of the output: the process is exiting
            self._changed.notify_all()

    def wait_for_line(self, text: str, timeout: float = 120, *, stdout: bool = True) -> str:
        """The first output line containing `text` (on stderr only, unless `stdout`), once it
        was written (a hang guard after `timeout` seconds, not a timing)."""

        def found() -> str | None:
            lines = self.lines + (self.stdout if stdout else [])
            return next((line for line in lines if text in line), None)

        with self._changed:
            ok = self._changed.wait_for(lambda: found() is not None or self._ended(), timeout)
            line = found()
        assert ok and line is not None, f"no {text!r} in the output:\n{self.output}"
        return line

    def _ended(self) -> bool:
        return not any(reader.is_alive() for reader in self._readers)

    def exited(self) -> bool:
        return self.process.poll() is not None

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def children(self) -> list[int]:
        """The pids of this process's children (Linux /proc)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []

    def finish(self, timeout: float = 180, *, output: bool = True) -> int:
        """Wait for the exit (a hang guard after `timeout`) and, with `output`, for the end of
        its output — which an orphaned child still holds open; returns the exit code."""
        code = self.process.wait(timeout)
        if output:
            for reader in self._readers:
                reader.join(timeout)
        return code

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self.stdout) + "".join(self.lines)


def gone(pid: int) -> bool:
    """True when no process `pid` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z"


@contextmanager
def running(config: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Digest]:
    """A process that is killed if the test fails before it finished."""
    process = Digest(config, *args, env=env)
    try:
        yield process
    finally:
        if not process.exited():
            process.signal(signal.SIGKILL)
            process.finish(60)
