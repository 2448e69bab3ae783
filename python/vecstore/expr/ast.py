"""Syntax tree of a filter expression, as the parser builds it (before any schema is known).

Nodes are immutable; ``pos`` is the character offset the node starts at (for error messages) and
``depth`` the height of the subtree, which the parser bounds (``Limits.max_depth``) so that every
later pass may recurse over the tree without nearing Python's recursion limit. ``and``/``or``
chains are flattened into one n-ary :class:`Logical` node, so a long ``a or b or c ...`` stays
shallow.

Names and paths: :class:`Name` is a bare identifier (a field, or a dynamic-field key);
:class:`Path` is an identifier followed by ``[...]`` subscripts, each a string key or a
non-negative integer index (``meta["a"][0]``, ``tags[2]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union


@dataclass(frozen=True)
class Literal:
    """A constant: ``kind`` is ``int``, ``float``, ``str`` or ``bool``."""

    value: Any
    kind: str
    pos: int
    depth: int = 1


@dataclass(frozen=True)
class ListLit:
    items: tuple
    pos: int
    depth: int = 1


@dataclass(frozen=True)
class Placeholder:
    """``{name}``: a value taken from ``filter_params`` when the filter is bound."""

    name: str
    pos: int
    depth: int = 1


@dataclass(frozen=True)
class Name:
    name: str
    pos: int
    depth: int = 1


@dataclass(frozen=True)
class Path:
    name: str
    keys: tuple  # of str (quoted key) and int (decimal index)
    pos: int
    depth: int = 1


@dataclass(frozen=True)
class Unary:
    """Arithmetic sign: ``op`` is ``-`` or ``+``."""

    op: str
    operand: Node
    pos: int
    depth: int = 1


@dataclass(frozen=True)
class Binary:
    """Arithmetic: ``op`` is one of ``+ - * / % **``."""

    op: str
    left: Node
    right: Node
    pos: int
    depth: int = 1


@dataclass(frozen=True)
class Compare:
    """``op`` is one of ``== != < <= > >=``."""

    op: str
    left: Node
    right: Node
    pos: int
    depth: int = 1


@dataclass(frozen=True)
class Range:
    """A chained comparison ``lower op1 operand op2 upper`` with both ops in one direction."""

    lower: Node
    op1: str
    operand: Node
    op2: str
    upper: Node
    pos: int
    depth: int = 1


@dataclass(frozen=True)
class Not:
    operand: Node
    pos: int
    depth: int = 1


@dataclass(frozen=True)
class Logical:
    """``op`` is ``and`` or ``or``; ``items`` has two or more operands."""

    op: str
    items: tuple
    pos: int
    depth: int = 1


@dataclass(frozen=True)
class In:
    operand: Node
    values: Node  # ListLit or Placeholder
    negated: bool
    pos: int
    depth: int = 1


@dataclass(frozen=True)
class Like:
    operand: Node
    pattern: Node  # Literal(str) or Placeholder
    pos: int
    depth: int = 1


@dataclass(frozen=True)
class IsNull:
    operand: Node  # Name or Path
    negated: bool
    pos: int
    depth: int = 1


@dataclass(frozen=True)
class Exists:
    operand: Node
    pos: int
    depth: int = 1


@dataclass(frozen=True)
class Call:
    """A supported function; ``name`` is lower-case (``json_contains``, ``array_length``...)."""

    name: str
    args: tuple
    pos: int
    depth: int = 1


Node = Union[
    Literal,
    ListLit,
    Placeholder,
    Name,
    Path,
    Unary,
    Binary,
    Compare,
    Range,
    Not,
    Logical,
    In,
    Like,
    IsNull,
    Exists,
    Call,
]


def show(node: Node) -> str:
    """A compact, fully parenthesised rendering (tests and error messages use it)."""
    if isinstance(node, Literal):
        if node.kind == "bool":
            return "true" if node.value else "false"
        return repr(node.value)
    if isinstance(node, ListLit):
        return "[" + ", ".join(show(i) for i in node.items) + "]"
    if isinstance(node, Placeholder):
        return "{" + node.name + "}"
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Path):
        return node.name + "".join(
            f"[{k!r}]" if isinstance(k, str) else f"[{k}]" for k in node.keys
        )
    if isinstance(node, Unary):
        return f"({node.op}{show(node.operand)})"
    if isinstance(node, (Binary, Compare)):
        return f"({show(node.left)} {node.op} {show(node.right)})"
    if isinstance(node, Range):
        return f"({show(node.lower)} {node.op1} {show(node.operand)} {node.op2} {show(node.upper)})"
    if isinstance(node, Not):
        return f"(not {show(node.operand)})"
    if isinstance(node, Logical):
        return "(" + f" {node.op} ".join(show(i) for i in node.items) + ")"
    if isinstance(node, In):
        return f"({show(node.operand)} {'not in' if node.negated else 'in'} {show(node.values)})"
    if isinstance(node, Like):
        return f"({show(node.operand)} like {show(node.pattern)})"
    if isinstance(node, IsNull):
        return f"({show(node.operand)} is {'not ' if node.negated else ''}null)"
    if isinstance(node, Exists):
        return f"(exists {show(node.operand)})"
    if isinstance(node, Call):
        return f"{node.name}(" + ", ".join(show(a) for a in node.args) + ")"
    raise TypeError(f"not a syntax node: {node!r}")
