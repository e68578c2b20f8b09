"""The web apps: `digest preview` (local, read-only: the next digest and past issues) and
`digest serve` (public: unsubscribe, preferences, sign-up and the archive; provider hooks).

Nothing is imported here: `preview.create_preview_app` and `public.create_public_app` are the
entry points, loaded by the command that serves them.
"""
