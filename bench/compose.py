"""Benchmark: what DKIM adds to composing a message, against one RSA-2048 signature alone.

    python bench/compose.py              # 3,000 recipients, 3 rounds
    python bench/compose.py --recipients 500 --rounds 1

In one process, for the demo blog's issue and `--recipients` subscribers: the CPU time of
composing every recipient's message (digest.delivery.compose.Composer: personalised, and
DKIM-signed when a key is configured) without DKIM and with an RSA-2048 key, and, as the floor
of signing, one `private_key.sign()` of a short header block through `cryptography` (OpenSSL),
the same number of times. It prints the medians in microseconds a message, what DKIM adds over
the signature itself, and the peak resident memory. No SMTP and no database writes: this is
the composing step only (bench/send.py times the whole send). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402
from send import add_subscribers, first_audience, write_config  # noqa: E402
from tables import table  # noqa: E402

from digest.config.load import load_config  # noqa: E402
from digest.config.sending import compose_settings  # noqa: E402
from digest.delivery.compose import Composer  # noqa: E402
from digest.delivery.dkim import generate, private_pem  # noqa: E402
from digest.store.database import open_database  # noqa: E402


def composing(folder: Path, dkim: Path | None, count: int, rounds: int) -> float:
    """Median µs of CPU a message to compose `count` recipients' messages."""
    config = load_config(write_config(folder, f"sqlite:///{folder}/db.sqlite3", 2525, 4, dkim))
    add_subscribers(config, count)
    database = open_database(config.database_url)
    edition, people = first_audience(config, database, count)
    composer = Composer(compose_settings(config), edition, issue_id=None, database=None)
    for person in people[:20]:  # the variants rendered, as a send's first messages do
        composer(person)
    figures = []
    for _ in range(rounds):
        started = time.process_time()
        for person in people:
            composer(person)
        figures.append((time.process_time() - started) / len(people) * 1e6)
    database.dispose()
    return statistics.median(figures)


def signing(count: int, rounds: int) -> float:
    """Median µs of CPU of one RSA-2048 PKCS#1 v1.5 SHA-256 signature of a header block."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data = b"from:x\r\nto:y\r\nsubject:z\r\ndkim-signature:v=1; a=rsa-sha256; b=" * 4
    figures = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(count):
            key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        figures.append((time.process_time() - started) / count * 1e6)
    return statistics.median(figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--recipients", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        key = folder / "dkim.pem"
        key.write_bytes(private_pem(generate("rsa")))
        (folder / "plain").mkdir()
        (folder / "signed").mkdir()
        plain = composing(folder / "plain", None, args.recipients, args.rounds)
        signed = composing(folder / "signed", key, args.recipients, args.rounds)
    signature = signing(args.recipients, args.rounds)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"Composing {args.recipients:,} messages of the demo issue, medians of {args.rounds} "
        f"rounds, CPU µs a message; peak RSS {peak:.0f} MB.\n"
    )
    print(
        table(
            [
                ("", "µs a message"),
                ("composing, no DKIM", f"{plain:.0f}"),
                ("composing, RSA-2048 DKIM", f"{signed:.0f}"),
                ("one RSA-2048 signature alone", f"{signature:.0f}"),
                ("DKIM's cost beyond the signature", f"{signed - plain - signature:.0f}"),
            ]
        )
    )


if __name__ == "__main__":
    main()
