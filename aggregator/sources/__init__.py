"""Getting bytes: remote URLs (``http``), local seed folders (``files``), feed
discovery in HTML pages (``discover``) and OPML subscription lists (``opml``)."""
