"""Checks of a deployed service over HTTP: `python -m tests.integration --help`.

The rest of `tests/` runs the app in-process. These commands talk to a running instance
instead, at `--app-url`, the way its clients do, so they also see what only a real server
shows: several worker processes, a real network stack, a database shared by all of them.

    sample-data   fill the service with realistic items
    smoke         every endpoint's main success and failure path, one line per check
    concurrency   many concurrent clients writing and reading; then every item is checked

They exit non-zero when a check fails, so CI can run them against the app it started.
"""
