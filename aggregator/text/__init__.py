"""Text and HTML primitives: plain text and its tokens, languages, size caps, CSS
selectors, teasers (pure, no I/O)."""
