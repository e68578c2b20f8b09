"""Web pages from templates/web/*.html.j2, and the HTTP headers every page of the app carries.

Pages use the same sandboxed, autoescaping environment as the email (user templates first),
with the catalogue of the page's locale installed, so a template edit shows on the next reload.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse

from digest.config.schema import Config
from digest.render.csp import EMAIL_CSP, PAGE_CSP
from digest.render.edition import environment
from digest.render.i18n import html_lang, supported, translations

LOCALE_NAMES = {"zh": "中文", "en": "English"}  # endonyms: each shown in its own language

COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def request_locale(request: Request, config: Config) -> str:
    """`?locale=en|zh`, else the site's locale."""
    return supported(request.query_params.get("locale"), config.site.locale)


def page_environment(config: Config, locale: str) -> Any:
    """A fresh template environment (so edits show) speaking `locale`."""
    # the i18n extension adds install_gettext_translations
    env: Any = environment(config.path(config.templates_dir))
    env.install_gettext_translations(translations(locale), newstyle=True)
    return env


def page(
    request: Request,
    env: Any,
    config: Config,
    locale: str,
    name: str,
    values: dict[str, Any],
    status: int = 200,
) -> HTMLResponse:
    """Render `web/<name>.html.j2` with what every page needs, as a response."""
    query = dict(request.query_params)
    common = {
        "site": config.site,
        "section": name,
        "html_lang": html_lang(locale),
        "home_href": "/?" + urlencode({"locale": locale}),
        "issues_href": "/issues?" + urlencode({"locale": locale}),
        "locale_links": [
            {
                "name": LOCALE_NAMES[other],
                "lang": html_lang(other),
                "href": "?" + urlencode({**query, "locale": other}),
                "current": other == locale,
            }
            for other in LOCALE_NAMES
        ],
    }
    html = env.get_template(f"web/{name}.html.j2").render({**common, **values})
    headers = {**COMMON_HEADERS, "Content-Security-Policy": PAGE_CSP}
    return HTMLResponse(html, status_code=status, headers=headers)


def email_page(html: str) -> HTMLResponse:
    """An email's HTML as its own sandboxed page; its links open outside the preview."""
    head = html.find("<head>")
    base = '<base target="_blank">'
    html = html[: head + 6] + base + html[head + 6 :] if head >= 0 else base + html
    headers = {**COMMON_HEADERS, "Content-Security-Policy": EMAIL_CSP}
    return HTMLResponse(html, headers=headers)
