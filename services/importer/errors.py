"""The one error type of an import: bad input or an unreachable source, with a message
that names what is missing. Raised before anything is written."""

from __future__ import annotations


class ImportFailure(Exception):
    """The import cannot go on; the message says why (shown as is, exit code 1)."""
