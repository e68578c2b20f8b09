"""`digest doctor` against a real world on 127.0.0.1: an authoritative DNS server (dnslib), an
SMTP relay with implicit TLS and AUTH (aiosmtpd, a certificate from a test CA made by
trustme), and the public app over HTTPS (uvicorn). No name is looked up anywhere else.

Every failure must name the record to publish or the setting to change; where it names a
record, the test publishes exactly that record and runs the checks again: the fix must work.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.cli import main
from digest.config.credentials import smtp_password
from digest.config.load import load_config
from digest.config.ops import doctor_settings
from digest.delivery.dkim import dns_record, generate, private_pem, txt_value
from digest.issues.doctor import check_config
from digest.ops import resolve
from digest.ops.checks import Check, Verdict
from digest.ops.doctor import Diagnosis, diagnose
from digest.ops.settings import DoctorSettings, KeyFile
from digest.ops.web import check_web
from digest.store.database import open_database
from digest.web.public import create_public_app
from tests.support import paths
from tests.support.browser import serving
from tests.support.dns_server import DnsServer, Zone
from tests.support.smtp_server import SMTPServer, self_signed

BLOG = paths.ROOT / "examples" / "blog"
RELAY = "smtp.relay.test"
WEB = "news.example.test"
USER, PASSWORD = "digest", "relay-password"


@dataclass
class World:
    dns: DnsServer
    config_path: Path
    folder: Path
    smtp: SMTPServer

    @property
    def zone(self) -> Zone:
        return self.dns.zone

    def settings(self, **changes: object) -> DoctorSettings:
        config = load_config(self.config_path)
        settings = doctor_settings(config, smtp_password=smtp_password(config))
        return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]

    def diagnose(self, **changes: object) -> Diagnosis:
        return diagnose(self.settings(**changes), check_config(load_config(self.config_path)))


def by_name(diagnosis: Diagnosis) -> dict[str, Check]:
    return {check.name: check for check in diagnosis.checks}


def write_key(folder: Path, name: str, kind: str = "rsa") -> Path:
    path = folder / f"{name}.pem"
    path.write_bytes(private_pem(generate(kind)))
    return path


def publish_dkim(zone: Zone, selector: str, domain: str, key_file: Path) -> None:
    from digest.delivery.dkim import load_key

    value = txt_value(load_key(key_file, domain, selector, "test").key)
    # split as a zone file must, and in the middle of p= on purpose
    zone.txt(
        f"{selector}._domainkey.{domain}", *(value[i : i + 200] for i in range(0, len(value), 200))
    )


def publish_fix(zone: Zone, fix: str) -> str:
    """Publish the TXT record a fix names, replacing the name's TXT records; returns the
    name. The record is read from the fix text exactly as a person would copy it."""
    match = re.search(r'publish (\S+?)\.? IN TXT \(?\s*((?:"(?:[^"\\]|\\.)*"\s*)+)\)?', fix)
    assert match is not None, f"no record to publish in {fix!r}"
    name, strings = match.group(1), re.findall(r'"((?:[^"\\]|\\.)*)"', match.group(2))
    zone.remove(name, "TXT")
    zone.txt(name, *(s.replace('\\"', '"') for s in strings))
    return name


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # the web probe trusts the test CA
    certificates = {}
    for host in (RELAY, WEB):
        issued = ca.issue_cert(host)
        chain, key = tmp_path / f"{host}.crt", tmp_path / f"{host}.key"
        for n, blob in enumerate(issued.cert_chain_pems):
            blob.write_to_path(str(chain), append=n > 0)
        issued.private_key_pem.write_to_path(str(key))
        certificates[host] = (chain, key)
    key_file = write_key(tmp_path, "mail")
    (tmp_path / "smtp-password").write_text(PASSWORD + "\n", encoding="utf-8")
    (tmp_path / "web-secret").write_text("test-secret\n", encoding="utf-8")
    database_url = f"sqlite:///{tmp_path / 'digest.sqlite3'}"
    open_database(database_url).dispose()
    with (
        DnsServer() as dns,
        SMTPServer(mode="tls", auth=(USER, PASSWORD), cert=certificates[RELAY]) as smtp,
    ):
        config_path = tmp_path / "config.yaml"

        def write(web_port: int) -> None:
            config_path.write_text(
                f"""site:
  title: Example News
  base_url: https://blog.example.test
  postal_address: 1 Example Road, Testville
sources:
  - type: markdown
    path: {BLOG}
database:
  url: {database_url}
smtp:
  host: {RELAY}
  port: {smtp.port}
  security: tls
  username: {USER}
  password_file: smtp-password
  ca_file: ca.pem
  timeout: 10
sender:
  from: "Example News <news@example.test>"
dkim:
  domain: example.test
  selector: mail
  key_file: {key_file.name}
bounces:
  return_path: bounces@example.test
web:
  base_url: https://{WEB}:{web_port}
  secret_file: web-secret
dns:
  nameservers: ["{dns.nameserver}"]
""",
                encoding="utf-8",
            )

        write(443)
        config = load_config(config_path)
        database = open_database(config.database_url)
        app = create_public_app(config, database)
        with serving(app, tls=certificates[WEB]) as url:
            write(int(url.rpartition(":")[2]))
            zone = dns.zone
            zone.a(RELAY, "127.0.0.1")
            zone.a(WEB, "127.0.0.1")
            zone.txt("example.test", "v=spf1 include:_spf.relay.test ~all")
            zone.txt("_spf.relay.test", "v=spf1 ip4:127.0.0.1 -all")
            publish_dkim(zone, "mail", "example.test", key_file)
            zone.txt("_dmarc.example.test", "v=DMARC1; p=reject; adkim=s; aspf=s")
            zone.mx("example.test", 10, "mx.example.test")
            yield World(dns, config_path, tmp_path, smtp)
        database.dispose()


def assert_all_pass(diagnosis: Diagnosis) -> None:
    problems = [c for c in diagnosis.checks if c.verdict != Verdict.PASS]
    assert not problems, problems
    assert diagnosis.exit_code == 0


def test_a_correct_domain_passes_every_check_and_sends_nothing(world: World) -> None:
    diagnosis = world.diagnose()
    assert_all_pass(diagnosis)
    checks = by_name(diagnosis)
    assert set(checks) == {
        "config",
        "database",
        "smtp",
        "smtp tls",
        "smtp auth",
        "spf",
        "dkim mail",
        "dmarc",
        "mx",
        "web",
        "web clock",
    }
    assert "accepted the login of digest" in checks["smtp auth"].summary
    assert "using 1 of the 10 DNS lookups" in checks["spf"].summary  # the include
    assert world.smtp.mailbox.messages == []  # no mail sent
    # every name went to the test server (the resolver knows no other)
    assert ("mail._domainkey.example.test", "TXT") in world.dns.asked
    assert (RELAY, "A") in world.dns.asked and (WEB, "A") in world.dns.asked


def test_the_command_prints_one_line_per_check_and_json(world: World) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["--config", str(world.config_path), "doctor"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 11 and all(line.startswith("pass  ") for line in lines), lines
    as_json = runner.invoke(main, ["--config", str(world.config_path), "doctor", "--json"])
    assert as_json.exit_code == 0
    data = json.loads(as_json.output)
    assert data["ok"] is True and {c["verdict"] for c in data["checks"]} == {"pass"}

    world.zone.remove("_dmarc.example.test", "TXT")
    failing = runner.invoke(main, ["--config", str(world.config_path), "doctor", "--json"])
    assert failing.exit_code == 1
    dmarc = next(c for c in json.loads(failing.output)["checks"] if c["check"] == "dmarc")
    assert dmarc["verdict"] == "fail" and "_dmarc.example.test. IN TXT" in dmarc["fix"]
    text = runner.invoke(main, ["--config", str(world.config_path), "doctor"])
    assert text.exit_code == 1
    assert any(
        line.startswith("FAIL  dmarc: ") and "→ publish" in line
        for line in text.output.splitlines()
    )


def test_an_invalid_configuration_exits_2(world: World) -> None:
    text = world.config_path.read_text(encoding="utf-8")
    world.config_path.write_text(
        text.replace("  nameservers:", "  name_servers:"), encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["--config", str(world.config_path), "doctor"])
    assert result.exit_code == 2 and "dns.name_servers" in result.output
    world.config_path.write_text(
        text.replace("password_file: smtp-password", "password_file: gone")
    )
    missing = CliRunner().invoke(main, ["--config", str(world.config_path), "doctor"])
    assert missing.exit_code == 2
    assert "FAIL  config: " in missing.output and "smtp.password_file" in missing.output


def test_spf_missing_the_relay_fails_with_the_record_to_publish(world: World) -> None:
    world.zone.remove("example.test", "TXT")
    world.zone.txt("example.test", "v=spf1 ip4:192.0.2.10 -all")
    spf = by_name(world.diagnose())["spf"]
    assert spf.failed and "does not permit the relay smtp.relay.test" in spf.summary
    assert (
        spf.fix is not None
        and 'example.test. IN TXT "v=spf1 ip4:192.0.2.10 ip4:127.0.0.1 -all"' in spf.fix
    )
    publish_fix(world.zone, spf.fix)
    assert_all_pass(world.diagnose())


def test_no_spf_record_fails_with_a_record(world: World) -> None:
    world.zone.remove("example.test", "TXT")
    spf = by_name(world.diagnose())["spf"]
    assert spf.failed and "publishes no SPF record" in spf.summary
    assert spf.fix is not None
    publish_fix(world.zone, spf.fix)
    assert_all_pass(world.diagnose())


def test_spf_over_ten_lookups_fails_although_the_relay_is_matched_first(world: World) -> None:
    zone = world.zone
    zone.remove("example.test", "TXT")
    includes = " ".join(f"include:s{n}.relay.test" for n in range(11))
    zone.txt("example.test", f"v=spf1 {includes} -all")
    zone.txt("s0.relay.test", "v=spf1 ip4:127.0.0.1 -all")  # a receiver stops here for us
    for n in range(1, 11):
        zone.txt(f"s{n}.relay.test", f"v=spf1 ip4:198.51.100.{n} -all")
    spf = by_name(world.diagnose())["spf"]
    assert spf.failed and "more than 10 DNS lookups" in spf.summary
    assert spf.fix is not None and "ip4:198.51.100.10" in spf.fix
    publish_fix(world.zone, spf.fix)
    assert_all_pass(world.diagnose())


def test_a_nested_spf_include_passes(world: World) -> None:
    zone = world.zone
    zone.remove("_spf.relay.test", "TXT")
    zone.txt("_spf.relay.test", "v=spf1 include:deep.relay.test -all")
    zone.txt("deep.relay.test", "v=spf1 ", "ip4:127.0.0.0/8 -all")  # split strings, too
    diagnosis = world.diagnose()
    assert_all_pass(diagnosis)
    assert "using 2 of the 10 DNS lookups" in by_name(diagnosis)["spf"].summary


def test_a_dkim_record_with_another_key_fails_with_the_record_to_publish(world: World) -> None:
    zone = world.zone
    zone.remove("mail._domainkey.example.test", "TXT")
    publish_dkim(zone, "mail", "example.test", write_key(world.folder, "old"))
    diagnosis = world.diagnose()
    dkim = by_name(diagnosis)["dkim mail"]
    assert dkim.failed and "carries another key" in dkim.summary
    ours = dns_record("mail", "example.test", _key(world.folder / "mail.pem"))
    assert dkim.fix == f"publish {ours}"
    # DKIM fails, but SPF still aligns (relaxed or strict: the same domain): DMARC passes
    assert by_name(diagnosis)["dmarc"].verdict == Verdict.PASS
    publish_fix(zone, dkim.fix)
    assert_all_pass(world.diagnose())


def test_an_ed25519_key_is_checked_beside_the_rsa_key(world: World) -> None:
    ed = write_key(world.folder, "ed", "ed25519")
    keys = (
        *world.settings().dkim_keys,
        KeyFile(selector="ed", path=ed, key="dkim.ed25519_key_file"),
    )
    missing = by_name(world.diagnose(dkim_keys=keys))["dkim ed"]
    assert missing.failed and "no DKIM record at ed._domainkey.example.test" in missing.summary
    assert missing.fix is not None and "k=ed25519" in missing.fix
    publish_fix(world.zone, missing.fix)
    assert_all_pass(world.diagnose(dkim_keys=keys))


def test_a_missing_dmarc_record_fails_with_the_record_to_publish(world: World) -> None:
    world.zone.remove("_dmarc.example.test", "TXT")
    dmarc = by_name(world.diagnose())["dmarc"]
    assert dmarc.failed and "publishes a DMARC record" in dmarc.summary
    assert dmarc.fix == 'publish _dmarc.example.test. IN TXT "v=DMARC1; p=none; adkim=r; aspf=r"'
    publish_fix(world.zone, dmarc.fix)
    assert_all_pass(world.diagnose())


def test_dmarc_reject_without_alignment_fails_with_what_to_sign_and_publish(world: World) -> None:
    """The relay's own domain signs and is the envelope: both pass, neither aligns."""
    zone = world.zone
    zone.txt("relay.test", "v=spf1 ip4:127.0.0.1 -all")
    publish_dkim(zone, "mail", "relay.test", world.folder / "mail.pem")
    changes: dict[str, object] = {
        "dkim_domain": "relay.test",
        "envelope_domain": "relay.test",
        "return_path": None,
    }
    diagnosis = world.diagnose(**changes)
    checks = by_name(diagnosis)
    assert checks["spf"].verdict == checks["dkim mail"].verdict == Verdict.PASS
    dmarc = checks["dmarc"]
    assert (
        dmarc.failed
        and "p=reject" in dmarc.summary
        and "receivers reject every message" in dmarc.summary
    )
    ours = dns_record("mail", "example.test", _key(world.folder / "mail.pem"))
    assert dmarc.fix == f"sign as the From domain: set dkim.domain: example.test and publish {ours}"
    # doing what it says: sign as example.test (whose record the fixture published)
    changes["dkim_domain"] = "example.test"
    assert_all_pass(world.diagnose(**changes))


def test_strict_alignment_of_a_subdomain_fails_and_relaxed_passes(world: World) -> None:
    zone = world.zone
    zone.txt("bounce.example.test", "v=spf1 ip4:127.0.0.1 -all")
    changes = {"envelope_domain": "bounce.example.test", "return_path": None, "dkim_keys": ()}
    dmarc = by_name(world.diagnose(**changes))["dmarc"]
    assert dmarc.failed and "aspf=s" in dmarc.summary
    assert dmarc.fix is not None and "aspf=r" in dmarc.fix and "p=reject" in dmarc.fix
    publish_fix(zone, dmarc.fix)
    assert by_name(world.diagnose(**changes))["dmarc"].verdict == Verdict.PASS


def test_dmarc_only_on_the_organisational_domain_passes(world: World) -> None:
    zone = world.zone
    zone.remove("_dmarc.example.test", "TXT")
    zone.txt("_dmarc.example.test", "v=DMARC1; p=quarantine; sp=reject")  # relaxed by default
    diagnosis = world.diagnose(from_domain="letters.example.test")
    assert_all_pass(diagnosis)
    dmarc = by_name(diagnosis)["dmarc"]
    assert "_dmarc.example.test (p=reject)" in dmarc.summary  # sp= governs the subdomain
    assert ("_dmarc.letters.example.test", "TXT") in world.dns.asked


@pytest.mark.parametrize("mode", ["tls", "starttls"])
def test_an_smtp_relay_with_a_self_signed_certificate_fails_the_tls_check(
    world: World, tmp_path: Path, mode: str
) -> None:
    folder = tmp_path / "self"
    folder.mkdir()
    with SMTPServer(mode=mode, auth=(USER, PASSWORD), cert=self_signed(folder)) as rogue:
        settings = world.settings()
        probe = dataclasses.replace(settings.smtp, port=rogue.port, security=mode)
        checks = by_name(diagnose(dataclasses.replace(settings, smtp=probe), _ok()))
    assert checks["smtp"].verdict == Verdict.PASS  # reachable
    tls = checks["smtp tls"]
    assert tls.failed and "not valid" in tls.summary and "smtp.ca_file" in (tls.fix or "")
    assert "smtp auth" not in checks  # no password sent to a server we cannot trust
    assert rogue.mailbox.messages == []


def test_a_refused_login_fails(world: World) -> None:
    settings = world.settings()
    wrong = dataclasses.replace(settings.smtp, password="wrong")
    auth = by_name(diagnose(dataclasses.replace(settings, smtp=wrong), _ok()))["smtp auth"]
    assert auth.failed and "refused the login of digest" in auth.summary


def test_a_bounce_domain_without_mx_fails(world: World) -> None:
    world.zone.remove("example.test", "MX")
    world.zone.remove("example.test", "TXT")  # and nothing else: the name is gone
    mx = by_name(world.diagnose())["mx"]
    assert mx.failed and "bounces to bounces@example.test cannot arrive" in mx.summary
    assert mx.fix is not None and "IN MX 10" in mx.fix


def test_a_web_server_whose_clock_is_off_fails(world: World) -> None:
    settings = world.settings()
    resolver = resolve.make_resolver(settings.nameservers)
    late = datetime.now(UTC) + timedelta(minutes=5)
    clock = {c.name: c for c in check_web(resolver, settings.base_url, clock_skew=60, now=late)}
    assert clock["web"].verdict == Verdict.PASS
    assert clock["web clock"].failed and "behind this machine's" in clock["web clock"].summary


def test_a_base_url_that_is_not_the_public_app_fails(world: World) -> None:
    settings = world.settings(base_url=world.settings().base_url + "/elsewhere")
    web = by_name(diagnose(settings, _ok()))["web"]
    assert web.failed and "answered 404" in web.summary


def test_an_unmigrated_database_fails(world: World) -> None:
    url = f"sqlite:///{world.folder / 'empty.sqlite3'}"
    database = by_name(world.diagnose(database_url=url))["database"]
    assert database.failed and database.fix == "run `digest db upgrade`"


def _key(path: Path) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    from digest.delivery.dkim import load_key

    return load_key(path, "example.test", "mail", "test").key


def _ok() -> Check:
    return Check(name="config", verdict=Verdict.PASS, summary="valid")
