"""Following a collection: new posts placed into an earlier analysis, cluster ids kept across re-analyses, a person's
review re-applied (``docs/follow.md``)."""
