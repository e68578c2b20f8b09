"""The stages' settings (issue 19): small frozen objects of what each stage reads, built from
the `Config` by digest.config.stages and digest.config.sending, never the `Config` itself.

- Each is a frozen, slotted, keyword-only dataclass: a stage cannot change what it was given,
  and a call cannot mix up two settings of the same type by position.
- Each settings module imports nothing but the standard library (and other settings
  modules), so holding one costs nothing at start-up.
- What crosses into a sending process (`Job`) holds settings and no `Config`: the pickle names
  no module of digest.config, and it comes back equal.
"""

from __future__ import annotations

import dataclasses
import importlib
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from digest.config.load import load_config
from digest.config.sending import delivery_settings, inbound_settings, mailbox_settings
from digest.config.stages import render_settings, source_settings
from digest.delivery.settle import job_for
from tests.issues.test_send import write_config

SETTINGS_MODULES = [
    "digest.excerpt.settings",
    "digest.sources.settings",
    "digest.render.settings",
    "digest.delivery.settings",
    "digest.inbound.settings",
    "digest.config.issues",
]


def settings_classes() -> list[type]:
    found = []
    for name in SETTINGS_MODULES:
        module = importlib.import_module(name)
        found += [
            value
            for value in vars(module).values()
            if dataclasses.is_dataclass(value)
            and isinstance(value, type)
            and value.__module__ == name
        ]
    return found


@pytest.mark.parametrize("cls", settings_classes(), ids=lambda cls: cls.__name__)
def test_every_settings_class_is_frozen_slotted_and_keyword_only(cls: type) -> None:
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen
    assert "__slots__" in vars(cls)
    assert all(field.kw_only for field in dataclasses.fields(cls))


def test_settings_modules_import_only_the_standard_library() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        f"for name in {SETTINGS_MODULES!r}:\n"
        "    __import__(name)\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        # the interpreter's build data, which the standard library's sysconfig reads
        "print(sorted(m for m in new - set(sys.stdlib_module_names) "
        "if not m.startswith('_sysconfigdata_')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "['digest']", result.stdout


def test_a_sending_process_receives_settings_not_the_config(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, f"sqlite:///{tmp_path / 'd.sqlite3'}", 2525))
    job = job_for(delivery_settings(config), 7)
    data = pickle.dumps(job)
    assert b"digest.config" not in data and b"pydantic" not in data
    assert pickle.loads(data) == job
    assert job.settings.smtp.port == 2525
    assert job.settings.compose.render == render_settings(config)


def test_the_builders_resolve_paths_against_the_configuration_folder(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'd.sqlite3'}", 25)
    path.write_text(
        path.read_text("utf-8") + "bounces:\n  maildir: mail/bounces\n", encoding="utf-8"
    )
    config = load_config(path)
    folder = path.parent.resolve()
    assert render_settings(config).templates == folder / "templates"
    assert source_settings(config).cache_dir == folder / "var" / "cache"
    assert mailbox_settings(config).maildir == folder / "mail" / "bounces"
    assert inbound_settings(config).keys.secret == "test-secret"
