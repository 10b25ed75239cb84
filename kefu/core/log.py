"""Logging of Kefu's processes (settings.LOGGING and `kefu run`'s web server).

Without a log file everything goes to the console, as for `kefu worker` under a supervisor. With
one (KEFU_LOG_FILE; `kefu run` sets var/log/kefu.log for itself and the processes it starts)
everything goes to the file, and the console shows only errors, one line each, so the address
and the logins `kefu run` prints stay in sight.

A refused request (403, 404, 400) is logged as one line, without the traceback of the exception
that refused it: only server errors (5xx) keep theirs.

Imported by the settings module: standard library only.
"""

import logging

FILE_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


class BriefFormatter(logging.Formatter):
    """One line per record: no traceback (the log file has it)."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        return line.splitlines()[0] if line else line


class ClientErrorsWithoutTraceback(logging.Filter):
    """Drop the traceback of a record about a request refused with a 4xx status."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and status < 500 and record.exc_info:
            record.exc_info = None
            record.exc_text = None
        return True


_FILTERS = {"client_errors": {"()": ClientErrorsWithoutTraceback}}


def logging_config(*, log_file: str = "", level: str = "INFO") -> dict:
    """settings.LOGGING: to the console, or to `log_file` with errors also on the console."""
    handlers: dict[str, dict] = {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["client_errors"],
            **({"level": "ERROR", "formatter": "brief"} if log_file else {}),
        }
    }
    if log_file:
        handlers["file"] = {
            "class": "logging.handlers.WatchedFileHandler",
            "filename": log_file,
            "encoding": "utf-8",
            "formatter": "file",
            "filters": ["client_errors"],
        }
    names = list(handlers)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": _FILTERS,
        "formatters": {
            "file": {"format": FILE_FORMAT},
            "brief": {"()": BriefFormatter, "format": "%(levelname)s %(name)s: %(message)s"},
        },
        "handlers": handlers,
        "root": {"handlers": names, "level": level},
        "loggers": {
            "django.db.backends": {"level": "INFO"},
            "huey": {"handlers": names, "level": "INFO", "propagate": False},
        },
    }


def uvicorn_log_config(*, log_file: str) -> dict:
    """The web server's own loggers: its start, errors and the access log to the file; errors
    (a port already taken) on the console too."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": _FILTERS,
        "formatters": {
            "file": {"format": FILE_FORMAT},
            "brief": {"()": BriefFormatter, "format": "%(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {
            "file": {
                "class": "logging.handlers.WatchedFileHandler",
                "filename": log_file,
                "encoding": "utf-8",
                "formatter": "file",
            },
            "console": {"class": "logging.StreamHandler", "level": "ERROR", "formatter": "brief"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["file", "console"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["file"], "level": "INFO", "propagate": False},
        },
    }
