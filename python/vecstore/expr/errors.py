"""The error every stage of :mod:`vecstore.expr` raises for a bad filter.

:class:`ExprError` is an :class:`~vecstore.errors.InvalidArgument` (code 1100, also a
``ValueError``), so callers that already handle invalid arguments handle bad filters too.

The message names where and what: ``at position 7: expected a value after '==', found end of
expression``. ``position`` is the 0-based character offset into the filter string (``None`` when an
error has no place in the text, e.g. a missing ``filter_params`` entry); ``detail`` is the message
without the position prefix. Type errors name the field and the mismatch, using Milvus's wording
where Milvus has one (``field age2 not exist``).
"""

from __future__ import annotations

from vecstore.errors import InvalidArgument


class ExprError(InvalidArgument):
    """A filter expression that cannot be parsed, type-checked or bound to its parameters."""

    def __init__(self, detail: str, position: int | None = None) -> None:
        text = detail if position is None else f"at position {position}: {detail}"
        super().__init__(text)
        self.detail = detail
        self.position = position


__all__ = ["ExprError"]
