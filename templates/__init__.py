"""The built-in templates: `email/` (the digest and the transactional mails) and `web/` (pages).

This folder sits at the top of the repository, beside `digest/`, and ships in the wheel as the
package `digest.templates` (pyproject.toml maps it), so the code finds it through
importlib.resources wherever digest is installed. A user's `templates_dir` overrides any file
here by its relative path.
"""
