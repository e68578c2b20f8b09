"""`digest excerpt FILE` reads config.yaml's excerpt settings when there is one (issue 21).

With `excerpt.length: 60` it printed 354 characters while `digest posts` gave 63, labelled math
the configuration does not render, and used zh labels for an English blog.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from digest.cli import main

POST = """---
title: Costs
date: 2026-01-05
---

A lookup costs $O(1)$ on average. {words}

```python
d[k]
```
"""
WORDS = " ".join(["Probing walks the table until it finds an empty slot."] * 8)


@pytest.fixture
def blog(tmp_path: Path) -> Iterator[Path]:
    """A folder with one post in posts/, as the working folder; no config.yaml yet."""
    (tmp_path / "posts").mkdir()
    (tmp_path / "posts" / "costs.md").write_text(POST.format(words=WORDS), "utf-8")
    here = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(here)


def config(folder: Path, excerpt: str = "", locale: str = "en") -> Path:
    path = folder / "config.yaml"
    path.write_text(
        f"site:\n  title: T\n  base_url: https://t.example.org\n  locale: {locale}\n"
        "sources:\n  - type: markdown\n    path: posts\n"
        "digest:\n  lookback_days: 0\n" + (f"excerpt:\n{excerpt}" if excerpt else ""),
        "utf-8",
    )
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"DIGEST_CONFIG": ""})


def test_the_config_decides_like_digest_posts(blog: Path) -> None:
    config(blog, "  length: 60\n  math: none\n")
    printed = run("excerpt", "posts/costs.md")
    assert printed.exit_code == 0, printed.output
    listed = run("posts", "--json")
    [row] = json.loads(listed.stdout)
    assert printed.stdout.strip() == row["excerpt"]
    # 60 characters and "...", English labels from site.locale, $ left alone (math: none)
    assert (
        printed.stdout.strip() == "A lookup costs $O(1)$ on average. Probing walks the table un..."
    )


def test_flags_override_the_config(blog: Path) -> None:
    config(blog, "  length: 60\n  math: none\n")
    result = run("excerpt", "posts/costs.md", "--length", "21", "--locale", "zh", "--math", "auto")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "A lookup costs [Math]..."


def test_labels_follow_excerpt_labels_then_site_locale(blog: Path) -> None:
    config(blog, "  length: 2000\n  labels: zh\n", locale="en")
    assert run("excerpt", "posts/costs.md").stdout.strip().endswith("slot. [代码]")
    (blog / "config.yaml").unlink()
    config(blog, "  length: 2000\n", locale="en")
    assert run("excerpt", "posts/costs.md").stdout.strip().endswith("slot. [code]")


def test_no_config_means_the_documented_defaults(blog: Path) -> None:
    result = run("excerpt", "posts/costs.md")
    assert result.exit_code == 0, result.output
    text = result.stdout.strip()
    # DESIGN.md: length 350, zh labels, math auto
    assert text.startswith("A lookup costs [Math] on average.")
    assert len(text) == 350 + len("...") and text.endswith("...")  # labels count as shown


def test_an_invalid_config_is_exit_2_with_its_sentence(blog: Path) -> None:
    path = config(blog, "  length: lots\n")
    result = run("excerpt", "posts/costs.md")
    assert result.exit_code == 2
    assert f"{path.name}, line 11: excerpt.length: input should be a valid integer" in (
        result.output
    )
    assert "Traceback" not in result.output and result.output.count("\n") == 1


def test_a_named_config_that_is_missing_is_exit_2(blog: Path) -> None:
    result = run("--config", "elsewhere.yaml", "excerpt", "posts/costs.md")
    assert result.exit_code == 2
    assert "elsewhere.yaml: configuration file not found." in result.output


def test_a_posts_own_math_switch_applies(blog: Path) -> None:
    config(blog, "  math: kramdown\n")
    post = blog / "posts" / "costs.md"
    assert "costs $O(1)$ on" in run("excerpt", str(post)).stdout
    post.write_text(POST.format(words="").replace("date:", "math: true\ndate:"), "utf-8")
    assert "costs [math] on" in run("excerpt", str(post)).stdout
