"""A string that never shows itself in repr, logs or tracebacks."""

from __future__ import annotations

import hmac


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value:
            raise ValueError("a secret must not be empty")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def matches(self, candidate: str) -> bool:
        """Constant-time comparison, so a wrong token leaks nothing through timing.

        A candidate that cannot be UTF-8 encoded (aiohttp hands undecodable header bytes
        over as lone surrogates) matches nothing; it is never echoed in an exception.
        """
        try:
            given = candidate.encode()
        except UnicodeEncodeError:
            return False
        return hmac.compare_digest(self._value.encode(), given)

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and self.matches(other._value)

    def __hash__(self) -> int:
        return hash(self._value)
