"""The excerpt stage (DESIGN.md section 3): a post's body in, its excerpt's plain text out.

`rules` decides which text is the excerpt and where it is cut; `markup` turns Markdown and
HTML into plain text with markdown-it-py, helped by `tags` (Hexo tag plugins, Liquid tags,
Hugo shortcodes), `attributes` (kramdown and Goldmark attribute lists), `tex` (which math
delimiters a blog renders), `cjkemphasis` (CJK-friendly emphasis) and `markers` (labels until
their language is known); `clean` removes control characters from any text a template shows.

Nothing is imported here, so `digest.excerpt.clean` does not load the Markdown parser.
"""
