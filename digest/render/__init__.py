"""The render stage: an issue's posts in, its HTML and plain-text parts out, once per variant.

`edition` runs Jinja2 -> MJML (mjml-python) -> HTML with inlined CSS (premailer) and the text
part; `budget` keeps the HTML under Gmail's clip; `wrap` folds text for mail; `i18n` holds
the message catalogues and locale-aware formatting; `csp` the Content-Security-Policies of what
is shown in a browser. Rendering never touches the network.

Nothing is imported here: the heavy renderers load only when `edition` is used.
"""
