"""Errors of the contracts tooling meant for the operator (one line, no traceback)."""

from __future__ import annotations


class ContractsError(Exception):
    """A build or deploy step failed; the message names what is wrong."""
