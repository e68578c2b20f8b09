"""What a Hexo, Hugo or Jekyll blog's own configuration says, for `digest init`.

`detect(folder)` recognises the blog and reads its settings (digest.blogs.hexo, .hugo,
.jekyll): title, base URL, the posts folder, the permalink (translated by
digest.sources.permalinks), language, time zone and the math its pages render. Each reader notes
what it could not carry over, in sentences `digest init` prints as they are.
"""

from __future__ import annotations

from pathlib import Path

from digest.blogs.base import BlogSettings
from digest.blogs.hexo import is_hexo, read_hexo
from digest.blogs.hugo import HUGO_FILES, read_hugo
from digest.blogs.jekyll import is_jekyll, read_jekyll
from digest.errors import ConfigError

__all__ = ["BlogSettings", "detect"]


def detect(folder: Path) -> BlogSettings:
    """Recognise the blog in `folder` (Hexo, Hugo or Jekyll) and read its settings."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder.")
    has_config = (folder / "_config.yml").is_file()
    if has_config and is_hexo(folder):
        return read_hexo(folder)
    if has_config and is_jekyll(folder):
        return read_jekyll(folder)
    if (
        any((folder / name).is_file() for name in HUGO_FILES)
        or (folder / "config" / "_default").is_dir()
    ):
        return read_hugo(folder)
    raise ConfigError(
        f"{folder}: not a Hexo, Hugo or Jekyll blog (no _config.yml with source/_posts or "
        "_posts, and no hugo.toml or config.toml); give the blog's folder: digest init BLOG_DIR."
    )
