"""Logging a bug without its message: an exception's text may quote record contents.

The log (journald) never carries record contents, so a bug is logged as its
type and stack frames; that is enough to find it in the code.
"""

from __future__ import annotations

import logging
import traceback


def log_bug(logger: logging.Logger, what: str, exc: BaseException) -> None:
    frames = "".join(traceback.format_tb(exc.__traceback__)).rstrip()
    logger.error("bug: %s failed (%s):\n%s", what, type(exc).__name__, frames)
