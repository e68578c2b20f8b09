"""digest installs like real software: the wheel `python -m build` makes, installed (not
editable) into a fresh virtual environment from the wheelhouse `make test` fills, renders a
digest from a folder that holds only a config and posts.

Nothing here touches the network: pip runs with `--no-index` against `.wheelhouse/`, and the
build backend comes from there too. The working folder of every command is the blog folder, far
from the source tree, so a template or catalogue found only through the checkout would fail.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.support import paths

ROOT = paths.ROOT
WHEELHOUSE = ROOT / ".wheelhouse"
DISTRIBUTION = "blog-digest"  # the name on the package index; `digest` there is another project

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
        PIP_NO_COMPILE="1",  # no .pyc of every dependency: a tenth of the module's time
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
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `python -m build` makes of this tree, offline."""
    if not (WHEELHOUSE / ".filled").exists():
        pytest.fail(f"{WHEELHOUSE} is missing: run `make wheelhouse` (make test does it first)")
    tmp = tmp_path_factory.mktemp("build")
    dist = tmp / "dist"
    _run(
        [sys.executable, "-m", "build", "--outdir", dist, ROOT], cwd=tmp, env=_offline_pip_env(tmp)
    )
    [built] = dist.glob(f"{DISTRIBUTION.replace('-', '_')}-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `digest` script of a fresh virtual environment holding only the built wheel."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = _offline_pip_env(tmp)
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
    package left off the list would be missing from the wheel: the list is the tree, code and
    data. Every folder holding files is listed, data folders too (setuptools warns at every
    install about an importable folder it does not know of, and means to leave it out one
    day), and each file that is not Python matches a package-data pattern of its folder."""
    import fnmatch
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    listed = set(config["setuptools"]["packages"])
    roots = {"digest": ROOT / "digest", "digest.templates": ROOT / "templates"}
    in_tree: set[str] = set()
    data: dict[str, list[str]] = {}
    for name, root in roots.items():
        for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
            if "__pycache__" in folder.parts:
                continue
            package = ".".join([name, *folder.relative_to(root).parts])
            files = [p.name for p in folder.iterdir() if p.is_file()]
            if files:  # Python imports any folder of files as a (namespace) package
                in_tree.add(package)
                data[package] = [f for f in files if not f.endswith(".py")]
    assert listed == in_tree
    patterns = config["setuptools"]["package-data"]
    for package, files in data.items():
        for file in files:
            assert any(fnmatch.fnmatch(file, p) for p in patterns.get(package, [])), (
                f"{package}: {file} matches no package-data pattern"
            )
    assert config["setuptools"]["package-dir"] == {"digest.templates": "templates"}
    assert (ROOT / "templates" / "email" / "digest.mjml.j2").is_file()


def test_the_version_has_one_source_read_without_package_metadata(installed: Path) -> None:
    """`__version__` in digest/__init__.py is the version: pyproject reads it (setuptools
    `attr`, dynamic), the wheel's metadata carries it, `digest --version` prints it, and no
    module of digest asks the installed package metadata for it at start-up."""
    import tomllib

    import digest

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["name"] == DISTRIBUTION
    assert project["project"]["dynamic"] == ["version"] and "version" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "digest.__version__"}
    env = _offline_pip_env(installed.parent)
    said = _run([installed, "--version"], cwd=installed.parent, env=env)
    assert said.strip() == f"digest, version {digest.__version__}"
    site = next((installed.parent.parent / "lib").glob("python3*/site-packages"))
    assert (site / f"blog_digest-{digest.__version__}.dist-info").is_dir()
    lookups = []
    for path in (ROOT / "digest").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        if "importlib.metadata" in source or "importlib_metadata" in source:
            lookups.append(str(path.relative_to(ROOT)))
        if "pkg_resources" in source:
            lookups.append(str(path.relative_to(ROOT)))
    assert lookups == []


def _owners(venv: Path) -> list[str]:
    """The installed distributions whose RECORD claims digest/__init__.py."""
    site = next((venv / "lib").glob("python3*/site-packages"))
    return sorted(
        info.name.split("-")[0]
        for info in site.glob("*.dist-info")
        if any(
            line.startswith("digest/__init__.py,")
            for line in (info / "RECORD").read_text(encoding="utf-8").splitlines()
        )
    )


@pytest.fixture(scope="module")
def old_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this project under its old distribution name, `digest` (what `pip install
    .` of a checkout before the rename installed): this tree with pyproject's name and static
    version of then."""
    import digest

    tmp = tmp_path_factory.mktemp("old")
    tree = tmp / "tree"
    shutil.copytree(
        ROOT,
        tree,
        ignore=shutil.ignore_patterns(
            ".venv", ".wheelhouse", ".git", "tests", "bench", "var", "build", "dist", "*.egg-info"
        ),
    )
    pyproject = (tree / "pyproject.toml").read_text(encoding="utf-8")
    old = pyproject.replace(f'name = "{DISTRIBUTION}"', 'name = "digest"')
    old = re.sub(
        r"^dynamic = \[\"version\"\].*$", f'version = "{digest.__version__}"', old, flags=re.M
    )
    old = old.replace('[tool.setuptools.dynamic]\nversion = { attr = "digest.__version__" }\n', "")
    assert 'name = "digest"' in old and "dynamic" not in old
    (tree / "pyproject.toml").write_text(old, encoding="utf-8")
    _run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", tmp / "dist", tree],
        cwd=tmp,
        env=_offline_pip_env(tmp),
    )
    [built] = (tmp / "dist").glob("digest-*.whl")
    return built


def test_upgrading_from_the_old_distribution_name_leaves_one_installation(
    wheel: Path, old_wheel: Path, tmp_path: Path
) -> None:
    """README's upgrade: `pip uninstall digest`, then `pip install blog-digest`. Installing
    the new name over the old one instead leaves two distributions claiming digest/ (pip
    knows nothing of renames), and uninstalling the old one then deletes files the new one
    needs: README's repair, `pip install --force-reinstall --no-deps blog-digest`, is tried
    here too."""
    import digest

    env = _offline_pip_env(tmp_path)
    venv = tmp_path / "venv"
    python, command = venv / "bin" / "python", venv / "bin" / "digest"
    pip: list[str | Path] = [python, "-m", "pip", "--quiet"]
    version = f"digest, version {digest.__version__}"
    _run([sys.executable, "-m", "venv", venv], cwd=tmp_path, env=env)
    _run([*pip, "install", old_wheel], cwd=tmp_path, env=env)
    assert _run([command, "--version"], cwd=tmp_path, env=env).strip() == version
    assert _owners(venv) == ["digest"]

    # the documented way: the old one out, then the new one in
    _run([*pip, "uninstall", "--yes", "digest"], cwd=tmp_path, env=env)
    _run([*pip, "install", wheel], cwd=tmp_path, env=env)
    assert _run([command, "--version"], cwd=tmp_path, env=env).strip() == version
    assert _owners(venv) == ["blog_digest"]
    _run([*pip, "check"], cwd=tmp_path, env=env)
    names = {
        p["name"]
        for p in json.loads(
            _run([python, "-m", "pip", "list", "--format=json"], cwd=tmp_path, env=env)
        )
    }
    assert DISTRIBUTION in names and "digest" not in names

    # the other order: two owners; uninstalling the old one breaks the new; the repair works
    _run([*pip, "uninstall", "--yes", DISTRIBUTION], cwd=tmp_path, env=env)
    _run([*pip, "install", "--no-deps", old_wheel], cwd=tmp_path, env=env)
    _run([*pip, "install", wheel], cwd=tmp_path, env=env)
    assert _owners(venv) == ["blog_digest", "digest"]
    _run([*pip, "uninstall", "--yes", "digest"], cwd=tmp_path, env=env)
    assert not command.exists()  # both claimed the script and the package: both are gone
    # from the temporary folder: in the checkout, `python -c` would find its digest/ first
    broken = subprocess.run(
        [python, "-c", "import digest.cli.base"], cwd=tmp_path, env=env, check=False
    )
    assert broken.returncode != 0
    _run([*pip, "install", "--force-reinstall", "--no-deps", wheel], cwd=tmp_path, env=env)
    assert _run([command, "--version"], cwd=tmp_path, env=env).strip() == version
    assert _owners(venv) == ["blog_digest"]


def test_pipx_installs_the_wheel_and_it_runs_a_dry_run_from_an_empty_folder(
    wheel: Path, tmp_path: Path
) -> None:
    """README's `pipx install`, offline: the wheel from the wheelhouse into pipx's own
    environment, then `digest --version`, and a dry run from a folder holding nothing but
    what a person writes there (a config and a post)."""
    import digest

    env = _offline_pip_env(tmp_path)
    env.update(
        PIPX_HOME=str(tmp_path / "pipx"),
        PIPX_BIN_DIR=str(tmp_path / "bin"),
        PIPX_MAN_DIR=str(tmp_path / "man"),
        # pipx would otherwise fetch the newest pip for its shared environment: no network
        PIPX_DISABLE_SHARED_LIBS_AUTO_UPGRADE="1",
    )
    _run([sys.executable, "-m", "pipx", "install", wheel], cwd=tmp_path, env=env)
    command = tmp_path / "bin" / "digest"
    said = _run([command, "--version"], cwd=tmp_path, env=env)
    assert said.strip() == f"digest, version {digest.__version__}"

    folder = tmp_path / "newsletter"
    folder.mkdir()
    assert list(folder.iterdir()) == []
    (folder / "config.yaml").write_text(PIPX_CONFIG, encoding="utf-8")
    (folder / "posts").mkdir()
    (folder / "posts" / "2026-01-11-pipx.md").write_text(POST, encoding="utf-8")
    _run([command, "subscribers", "add", "reader@example.com"], cwd=folder, env=env)
    out = _run([command, "send", "--dry-run", "--outbox", "out"], cwd=folder, env=env)
    assert "Wrote 1 messages to out/" in out and "nothing was sent" in out
    [message] = (folder / "out").glob("*.eml")
    parsed = email.message_from_bytes(message.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage) and parsed["To"] == "reader@example.com"
    body = parsed.get_body(("plain",))
    assert body is not None and "装好的轮子" in body.get_content()


PIPX_CONFIG = CONFIG + 'sender:\n  from: "Wheel Test <news@wheel.example.com>"\n'
