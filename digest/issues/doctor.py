"""`digest doctor` on a configuration: its own checks, then every check of digest.ops.doctor,
for the command and for the scheduler's daily run alike."""

from __future__ import annotations

from digest.config.credentials import smtp_password
from digest.config.ops import doctor_settings
from digest.config.presend import check_files, check_sendable, check_sending
from digest.config.schema import Config
from digest.errors import ConfigError, DigestError
from digest.ops.checks import Check, failed, passed
from digest.ops.doctor import Diagnosis, diagnose


def examine(config: Config) -> Diagnosis:
    """Every check, the configuration's first."""
    try:
        password = smtp_password(config)
    except DigestError:
        password = None  # check_config says why
    return diagnose(doctor_settings(config, smtp_password=password), check_config(config))


def check_config(config: Config) -> Check:
    """The configuration as a send needs it: the files it names readable, no plain-http links
    or password in clear, the postal address set (the same checks `digest send` makes)."""
    try:
        check_files(config)
        check_sending(config)
        check_sendable(config)
        smtp_password(config)
    except ConfigError as exc:
        return failed("config", exc.message, "correct the setting it names")
    return passed("config", f"{config.file} is valid")
