"""The ``aggregator`` console script's entry point, in a module that imports nothing of its own.

A worker process that multiprocessing starts from its fork server runs the
starting process's main script again (as ``__mp_main__``) before its first
call: for the console script pip writes, that is the script's import line.
With the command group itself as the entry point, every parse worker of
``aggregator run`` and ``aggregator update`` imported the whole CLI and the
config models (about 10 MiB more per worker) for nothing. Now that import
costs this module and the package's ``__init__`` (the errors and the data
model, which a worker imports anyway); the group loads when the command runs.
``python -m aggregator`` never had the cost: multiprocessing does not run a
package's ``__main__`` again.
"""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    """Run the ``aggregator`` command group (:data:`aggregator.cli.main`)."""
    import atexit
    import gc

    from aggregator.engine.heap import share_one_arena

    # Before any thread starts: see aggregator.engine.heap.
    share_one_arena()
    # Registered first, so it runs last of the exit handlers (after the
    # pools' and threads' joins): the interpreter's shutdown then collects
    # without walking the heap the command built (SQLAlchemy, the config, a
    # pass's leftovers), which is freed by reference counting as the modules
    # go. ``update`` over 300 feeds: 0.12-0.17 s from the exit handlers to the
    # process's end, 0.03-0.04 s with this.
    atexit.register(gc.freeze)
    from aggregator.cli import main as group

    group()
