"""A string that never shows itself in repr, str, format or log lines."""

from __future__ import annotations

import hmac
from typing import NoReturn, final

_MASK = "Secret('********')"


@final
class Secret:
    """Holds a credential; only :meth:`reveal` gives the value back.

    Every other way of turning it into text (``repr``, ``str``, f-strings, ``%s`` in log calls) prints a
    mask, so a config object or an exception can be logged without leaking the token.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return _MASK

    def __str__(self) -> str:
        return _MASK

    def __format__(self, format_spec: str) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> NoReturn:
        # Pickling would write the value to wherever the pickle goes; nothing in the agent needs it.
        raise TypeError("a Secret cannot be pickled")
