"""Getting bytes: remote URLs (``http``), local seed folders (``files``), feed
discovery in HTML pages (``discover``) and OPML subscription lists (``opml``)."""

import sys

# httpx imports its command-line client (click, rich, pygments: about 5 MiB)
# whenever rich is installed, in every process that imports httpx; we never
# run it. A None entry makes that import fail, and httpx then defines a stub
# in its place (the ``except ImportError`` in ``httpx/__init__.py``).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
