"""A blog's own configuration, for `digest init`: a Hexo, Hugo or Jekyll site in, config.yaml out.

`detect` finds which generator built the folder and dispatches to its reader (`hexo`, `hugo`,
`jekyll`, sharing `base`); each reader translates the generator's own settings (permalinks,
language, math, post folders) into digest's; `writer` writes the commented config.yaml. These
read a blog's configuration, never its posts: posts are `digest.sources`.

Nothing is imported here.
"""
