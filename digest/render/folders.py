"""Where templates come from: the built-in folder, and a user's overrides in `templates_dir`.

The built-in templates are the repository's top-level templates/, shipped in the wheel as the
package `digest.templates` and found through importlib.resources, so an installed wheel
renders from any working folder. Rendering (digest.render.edition) and the configuration's
template check (digest.config.templatecheck) both ask here, so they agree on what a user's
override folder is.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

BUILTIN_TEMPLATES = Path(str(resources.files("digest.templates")))


def user_templates(folder: Path) -> Path | None:
    """The folder of a user's template overrides, or None when there are none to read.

    A `templates_dir` that is the built-in folder itself (the repository's demo config.yaml
    names `templates`, which in a source checkout is where the built-ins live) holds no
    overrides: reading it before the built-ins would read them twice, and checking it would
    report the built-ins' own problems as the user's.
    """
    if not folder.is_dir():
        return None
    resolved = folder.resolve()
    return None if resolved == BUILTIN_TEMPLATES.resolve() else resolved
