"""digest installs like real software: the wheel `python -m build` makes, installed (not
editable) into a fresh virtual environment from the wheelhouse `make test` fills, renders a
digest from a folder that holds only a config and posts.

Nothing here touches the network: pip runs with `--no-index` against `.wheelhouse/`, and the
build backend comes from there too. The working folder of every command is the blog folder, far
from the source tree, so a template or catalogue found only through the checkout would fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import paths

ROOT = paths.ROOT
WHEELHOUSE = ROOT / ".wheelhouse"

CONFIG = """\
site:
  title: Wheel Test
  base_url: https://wheel.example.com
  locale: zh
sources:
  - type: markdown
    path: posts
digest:
  lookback_days: 0
"""

POST = """\
---
title: 装好的轮子
date: 2026-01-11
categories: [Python]
---
安装之后照样渲染：

```python
print("hi")
```

复杂度为 $O(n)$。
"""


def _offline_pip_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(WHEELHOUSE),
        PIP_CONFIG_FILE=os.devnull,  # no machine-wide index, constraints or find-links
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTHONDONTWRITEBYTECODE="1",
        HOME=str(tmp),
    )
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    return env


def _run(args: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `digest` script of a fresh virtual environment holding only the built wheel."""
    if not (WHEELHOUSE / ".filled").exists():
        pytest.fail(f"{WHEELHOUSE} is missing: run `make wheelhouse` (make test does it first)")
    tmp = tmp_path_factory.mktemp("wheel")
    env = _offline_pip_env(tmp)
    dist = tmp / "dist"
    _run([sys.executable, "-m", "build", "--outdir", dist, ROOT], cwd=tmp, env=env)
    [wheel] = dist.glob("digest-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=tmp, env=env)
    _run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel], cwd=tmp, env=env)
    return venv / "bin" / "digest"


def test_the_wheel_carries_templates_catalogues_and_migrations(installed: Path) -> None:
    listing = _run(
        [
            installed.parent / "python",
            "-c",
            "import digest, importlib.resources as r; "
            "root = r.files('digest'); "
            "print(root.joinpath('templates/email/digest.mjml.j2').is_file(), "
            "root.joinpath('locale/zh/LC_MESSAGES/messages.mo').is_file(), "
            "root.joinpath('store/migrations/versions').is_dir(), "
            "'site-packages' in digest.__file__)",
        ],
        cwd=installed.parent,
        env=_offline_pip_env(installed.parent),
    )
    assert listing.split() == ["True", "True", "True", "True"]


def test_installed_wheel_renders_a_digest_from_a_bare_folder(
    installed: Path, tmp_path: Path
) -> None:
    blog = tmp_path / "blog"
    (blog / "posts").mkdir(parents=True)
    (blog / "config.yaml").write_text(CONFIG, encoding="utf-8")
    (blog / "posts" / "2026-01-11-wheel.md").write_text(POST, encoding="utf-8")
    env = _offline_pip_env(tmp_path)
    _run([installed, "db", "upgrade"], cwd=blog, env=env)  # the migrations are in the wheel
    out = _run([installed, "render", "--out", "out"], cwd=blog, env=env)
    assert "Wrote out/issue.html" in out
    html = (blog / "out" / "issue.html").read_text(encoding="utf-8")
    text = (blog / "out" / "issue.txt").read_text(encoding="utf-8")
    assert "装好的轮子" in html and "WHEEL TEST" in html
    assert "最新文章" in html and "阅读全文" in html  # the compiled zh catalogue was found
    assert "安装之后照样渲染： [代码] 复杂度为 [Math]。" in text
    assert 'href="https://wheel.example.com/posts/wheel/"' in html


def test_pyproject_lists_every_package_of_the_tree() -> None:
    """pyproject.toml lists the packages by hand (the templates are a mapped folder), so a new
    package left off the list would be missing from the wheel: the list is the tree."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    listed = set(config["setuptools"]["packages"])
    in_tree = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "digest").rglob("__init__.py")
    }
    assert listed == in_tree | {"digest.templates"}
    assert config["setuptools"]["package-dir"] == {"digest.templates": "templates"}
    assert (ROOT / "templates" / "email" / "digest.mjml.j2").is_file()
