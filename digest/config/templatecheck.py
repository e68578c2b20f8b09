"""User templates checked when the configuration is loaded: a broken one names file and line.

`templates_dir` may override any built-in template (email/*.j2, web/*.j2). A syntax error in
one used to surface at render time as a bare Jinja2 exception, after the sources were read
(and, for `digest send`, with the issue under way). `check_templates` compiles every `.j2`
file there in the same kind of environment `digest.render.edition` uses, so an unclosed tag or an
unknown filter is a configuration error (exit 2): `templates/email/post.mjml.j2, line 3: ...`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from digest.errors import ConfigError
from digest.render.folders import user_templates

if TYPE_CHECKING:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

# The filters digest.render.edition adds to Jinja2's own (tests check the two lists agree).
CUSTOM_FILTERS = ("end_sentence",)
MAX_TEMPLATE_BYTES = 1024 * 1024


def checking_environment() -> ImmutableSandboxedEnvironment:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(extensions=["jinja2.ext.i18n"])
    for name in CUSTOM_FILTERS:
        env.filters[name] = _identity
    return env


def _identity(value: Any) -> Any:
    return value


def check_templates(folder: Path) -> None:
    """Compile every `*.j2` of a user's `templates_dir` (if it exists and is not the built-in
    folder); ConfigError for the first that does not, naming its file and line."""
    if user_templates(folder) is not None:
        compile_templates(folder)


def compile_templates(folder: Path) -> None:
    """Compile every `*.j2` under `folder`; ConfigError for the first that does not (Jinja2 is
    loaded only here: a configuration without template overrides never loads it)."""
    from jinja2 import TemplateSyntaxError

    env = checking_environment()
    for path in sorted(folder.rglob("*.j2")):
        if not path.is_file():
            continue
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_TEMPLATE_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the template: {exc.strerror}.") from None
        if len(data) > MAX_TEMPLATE_BYTES:
            raise ConfigError(f"{path}: the template is larger than 1 MB.")
        try:
            source = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise ConfigError(f"{path}, line {line}: the template is not valid UTF-8.") from None
        try:
            env.compile(source, name=path.relative_to(folder).as_posix(), filename=str(path))
        except TemplateSyntaxError as exc:
            raise ConfigError(f"{path}, line {exc.lineno}: {_one_sentence(exc.message)}.") from None


def _one_sentence(message: str | None) -> str:
    """Jinja2's few sentences ("Unexpected end of template. Jinja was looking for...") as one."""
    parts = [p.strip() for p in (message or "invalid template syntax").split(". ") if p.strip()]
    return "; ".join(p[:1].lower() + p[1:] for p in parts).rstrip(".")
