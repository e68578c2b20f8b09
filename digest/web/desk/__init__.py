"""The desk: the owner's web app at /admin/ of `digest serve` — overview with charts, the next
issue (preview, editor's note, posts left out, test copy, send now), issues and their
reports, subscribers with their timelines, returned mail, settings. A thin layer over the
library functions the CLI calls; `guard` logs people in and checks every request."""
