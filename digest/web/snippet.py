"""`digest form`: the sign-up form snippet to paste into a Hexo, Hugo or Jekyll template.

It posts to `web.base_url`/subscribe, offers the categories of recent issues, links the
privacy notice (`web.privacy_url`), says that clicks are recorded per reader when
`tracking.clicks` is `personal` (as the sign-up page does: with the script the reader never
sees that page), returns to the blog's first `web.return_to` origin, and
carries the translated messages its optional script shows (`data-*`, so the script needs no
text of its own). `plain` styles it inline; `minimal` leaves the styling to the blog.
"""

from __future__ import annotations

from typing import Literal

from digest.config.schema import Config
from digest.render.i18n import translate
from digest.store.database import Database
from digest.store.ledger import recent_categories
from digest.web.pages import page_environment

Style = Literal["plain", "minimal"]


def form_snippet(config: Config, database: Database | None, style: Style = "plain") -> str:
    locale = config.site.locale
    categories: list[str] = []
    if database is not None:
        with database.session() as session:
            categories = sorted(recent_categories(session))
    env = page_environment(config, locale)
    html: str = env.get_template("web/form/snippet.html.j2").render(
        site=config.site,
        web=config.web.base_url,
        style=style,
        categories=categories,
        locale=locale,
        return_to=f"{config.web.return_to[0]}/" if config.web.return_to else None,
        privacy_url=config.web.privacy_url,
        personal_tracking=config.tracking.clicks == "personal",
    )
    messages = {
        "data-sent": translate(locale, "Check your inbox: a confirmation link is on its way."),
        "data-wait": translate(locale, "One moment, then press the button again."),
        "data-invalid": translate(locale, "This address cannot subscribe."),
    }
    attributes = "".join(
        f' {name}="{value.replace(chr(34), "&quot;")}"' for name, value in messages.items()
    )
    return html.replace(
        '<form class="digest-signup"', f'<form class="digest-signup"{attributes}', 1
    )
