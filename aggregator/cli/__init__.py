"""The ``aggregator`` command: the group in :mod:`.app`, its commands by what they do.

Each command's module is imported when the command runs (``app.COMMAND_MODULES``):

- :mod:`.configure`: ``check``, ``config-schema``, ``migrate``
- :mod:`.ingest`: ``update``, ``discover``
- :mod:`.manage`: ``add``, ``remove``, ``disable``, ``enable``
- :mod:`.serving`: ``publish``, ``run``, ``worker``, ``serve``
- :mod:`.sources`: ``sources``, ``status``
- :mod:`.opml`: ``export-opml``, ``import-opml``
- :mod:`.stories`: ``stories``
- :mod:`.topics`: ``topics``, ``preview``, ``explain``

Exit codes (also in the README):

====  ==================================================

0     success
1     the command ran, but at least one source failed
2     bad configuration or usage
3     the store or data folder cannot be used (locked, broken)
4     publishing failed (cannot write the output)
====  =========================================================
"""

from aggregator.cli.app import (
    EXIT_CONFIG,
    EXIT_LISTEN,
    EXIT_PUBLISH,
    EXIT_SOURCE_FAILED,
    EXIT_STORE,
    fail,
    known_errors,
    main,
)

__all__ = [
    "EXIT_CONFIG",
    "EXIT_LISTEN",
    "EXIT_PUBLISH",
    "EXIT_SOURCE_FAILED",
    "EXIT_STORE",
    "fail",
    "known_errors",
    "main",
]
