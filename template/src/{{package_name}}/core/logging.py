"""Structured logs with structlog: one JSON object per line, or readable lines locally.

Every record takes the same way out, whoever logs it: the service (with `logging` and
`extra=`, or `structlog.get_logger()` and key-values), uvicorn, saq and the other libraries.
Each line carries the id of the request (or job) it belongs to.
"""

import logging
import re
import sys
from contextvars import ContextVar
from typing import Literal

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

# Set by RequestContextMiddleware for the duration of each request (and by a job for its run).
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _add_request_id(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    event.setdefault("request_id", request_id_var.get())
    event.pop("color_message", None)  # uvicorn's copy of the message, with ANSI colours
    return event


def _upper_case_level(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    event["level"] = event["level"].upper()  # "ERROR", as log queries have always matched it
    return event


def _for_console(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """Leave out empty values (no request id outside a request), and escape control characters
    (a newline sent as %0a in a path, an ANSI escape), so that a client cannot forge a line;
    JSON escapes them itself, and tracebacks, rendered after this, keep their own."""
    return {
        key: _CONTROL.sub(_escaped, value) if isinstance(value, str) else value
        for key, value in event.items()
        if value is not None
    }


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


# Run on every record, from `logging` and from structlog alike.
_SHARED: list[Processor] = [
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.ExtraAdder(),
    _add_request_id,
]


def formatter(fmt: Literal["json", "console"]) -> logging.Formatter:
    """The formatter of the root handler: the record through the shared processors, then
    rendered as one JSON object, or as a console line."""
    rendering: list[Processor]
    if fmt == "json":
        rendering = [
            _upper_case_level,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(),
        ]
    else:
        rendering = [
            _for_console,
            structlog.dev.ConsoleRenderer(
                colors=sys.stderr.isatty(),
                # Plain: rich's tracebacks would print every local variable, secrets included.
                exception_formatter=structlog.dev.plain_traceback,
            ),
        ]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
    )


def configure_logging(level: str, fmt: Literal["json", "console"]) -> None:
    """Route the app's, the server's and structlog's logs through one handler on the root
    logger.

    Uvicorn's own access log is silenced: RequestContextMiddleware logs every
    request with its request id, status and duration instead.
    """
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False
