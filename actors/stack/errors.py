"""The one error type of the local stack."""

from __future__ import annotations

from pathlib import Path


class StackError(Exception):
    """A stack operation failed; the message is one line an operator can act on.

    ``log`` names the file that holds the failing service's output, when there is one.
    """

    def __init__(self, message: str, log: Path | None = None) -> None:
        super().__init__(message)
        self.log = log

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (log: {self.log})" if self.log else text
