"""The sources stage: a folder of Markdown posts or a feed in, `Post` records out.

`read` reads every configured source (deduplicating a post reached twice); `markdown` reads a
folder the way Hexo, Hugo and Jekyll do, with `frontmatter` (YAML, TOML, JSON), `values`
(dates, flags, names), `fields`, `slugs`, `diacritics` and `permalinks` (each generator's URL
rules); `feed` reads RSS, Atom and JSON Feed; `cache` keeps parsed posts between commands.
Sources know nothing of email.

Nothing is imported here.
"""
