"""How an import tells its caller it cannot go on."""

from __future__ import annotations

import signal


class UsageImportError(ValueError):
    """The input cannot be read at all; nothing was written."""


class UsageImportBusy(Exception):
    """The run to import into is not waiting for an import: done, or another process's."""


class UsageImportInterrupted(KeyboardInterrupt):
    """The importing process was asked to stop by signal `signum` (SIGTERM): the run ends
    `interrupted`."""

    def __init__(self, message: str, signum: int = signal.SIGTERM) -> None:
        super().__init__(message)
        self.signum = signum
