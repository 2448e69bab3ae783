"""Tokenizer for Milvus filter expressions.

``tokenize(text)`` returns a list of :class:`Token` ending with an ``eof`` token; every token
carries its 0-based character offset, which error messages quote. Token kinds:

- ``int`` (Python int; decimal, ``0x`` hex, ``0b`` binary, leading-``0`` octal, as Go's
  ``strconv.ParseInt(s, 0, 64)`` that Milvus uses: out of INT64 range is an error), ``float``
  (decimal with ``.`` or exponent, hexadecimal with ``p`` exponent), ``str`` (single or double
  quotes with Go escapes; ``r'...'``/``R"..."`` raw strings), ``bool`` (``true True TRUE false
  False FALSE``);
- ``kw``: ``and or not in like exists`` written all-lower or all-upper, like Milvus's lexer
  (``And`` is an identifier); ``&&``, ``||`` and ``!`` arrive as ``kw`` ``and``/``or``/``not``.
  ``is`` and ``null`` stay identifiers (Milvus only knows the compound ``is null``; the parser
  recognises it);
- ``ident``: ``[A-Za-z_][A-Za-z0-9_]*`` or ``$meta``;
- ``op``: ``== != < <= > >= + - * / % ** ( ) [ ] , { }`` and the operators Milvus parses but
  rejects (``& | ^ ~ << >> =~ !~ =``, and ``$`` of struct-array references), left to the
  parser to refuse by name.

Cost is linear in the text; the caller bounds the text length (``Limits.max_length``) before
calling, and string literals longer than ``max_string`` are refused here.
"""

from __future__ import annotations

import re
from typing import Any

from vecstore.expr.errors import ExprError

INT64_MAX = (1 << 63) - 1

KEYWORDS = {"and", "or", "not", "in", "like", "exists"}
BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}

_TOKEN = re.compile(
    r"""
    [ \t\r\n]*  # leading whitespace rides along: one match per token
    (?: (?P<float>0[xX](?:[0-9a-fA-F]*\.[0-9a-fA-F]+|[0-9a-fA-F]+\.?)[pP][+-]?[0-9]+
      |(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?
      |[0-9]+[eE][+-]?[0-9]+)
  | (?P<int>0[xX][0-9a-fA-F]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)
  | (?P<quote>['"]|[rR]['"])
  | (?P<ident>\$meta(?![A-Za-z0-9_])|[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|==|!=|<=|>=|&&|\|\||<<|>>|=~|!~|[-+*/%<>()\[\],{}!~&|^=$])
  | (?P<end>\Z) )
    """,
    re.VERBOSE,
)
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
}


class Token:
    """One token; a plain slotted class because a 100k-value list makes 200k of them."""

    __slots__ = ("kind", "value", "pos", "end")

    def __init__(self, kind: str, value: Any, pos: int, end: int) -> None:
        self.kind = kind
        self.value = value
        self.pos = pos
        self.end = end

    def __repr__(self) -> str:
        return f"Token({self.kind!r}, {self.value!r}, {self.pos})"

    @property
    def text(self) -> str:
        """How the token reads in an error message."""
        if self.kind == "eof":
            return "end of expression"
        if self.kind == "str":
            return "string " + _short(repr(self.value))
        return f"'{self.value}'" if self.kind in ("kw", "op", "ident") else str(self.value)


def _short(s: str, limit: int = 40) -> str:
    return s if len(s) <= limit else s[: limit - 3] + "..."


def tokenize(text: str, max_string: int = 65_536) -> list[Token]:
    tokens: list[Token] = []
    append = tokens.append
    pos, n = 0, len(text)
    match = _TOKEN.match
    while True:
        m = match(text, pos)
        if m is None:
            start = pos + len(text[pos:]) - len(text[pos:].lstrip(" \t\r\n"))
            raise ExprError(f"unexpected character {text[start]!r}", start)
        kind = m.lastgroup
        start, end = m.start(kind), m.end()
        if kind == "end":
            break
        if kind == "quote":
            pos = _string(text, start, tokens, max_string)
            continue
        word = m.group(kind)
        if kind == "ident":
            if word in BOOLS:
                append(Token("bool", BOOLS[word], start, end))
            elif word in KEYWORDS or (word.isupper() and word.lower() in KEYWORDS):
                append(Token("kw", word.lower(), start, end))
            else:
                append(Token("ident", word, start, end))
        elif kind == "int":
            value = int(word) if word[0] != "0" or len(word) == 1 else _integer(word, start)
            if value > INT64_MAX:
                raise ExprError(f"integer literal {_short(word)} is out of range for INT64", start)
            append(Token("int", value, start, end))
        elif kind == "float":
            append(Token("float", _floating(word, start), start, end))
        elif word in ("&&", "||", "!"):
            append(Token("kw", {"&&": "and", "||": "or", "!": "not"}[word], start, end))
        else:
            append(Token("op", word, start, end))
        pos = end
    tokens.append(Token("eof", None, n, n))
    return tokens


def _integer(word: str, pos: int) -> int:
    low = word.lower()
    if low.startswith("0x"):
        value = int(low[2:], 16)
    elif low.startswith("0b"):
        value = int(low[2:], 2)
    elif len(low) > 1 and low[0] == "0":
        value = int(low[1:], 8)
    else:
        value = int(low)
    if value > INT64_MAX:
        raise ExprError(f"integer literal {_short(word)} is out of range for INT64", pos)
    return value


def _floating(word: str, pos: int) -> float:
    try:
        value = float.fromhex(word) if word[:2] in ("0x", "0X") else float(word)
    except (ValueError, OverflowError):
        value = float("inf")
    if value in (float("inf"), float("-inf")):
        # Go's ParseFloat reports a range error here and Milvus refuses the expression.
        raise ExprError(f"floating-point literal {_short(word)} is out of range", pos)
    return value


def _string(text: str, start: int, tokens: list[Token], max_string: int) -> int:
    raw = text[start] in "rR"
    q = start + 1 if raw else start
    quote = text[q]
    i = q + 1
    n = len(text)
    has_escape = False
    while True:
        # Find the next quote, backslash or line break in one C-level scan per segment.
        j = _next_special(text, i, quote)
        if j >= n or text[j] in "\r\n":
            raise ExprError(f"unterminated string literal (opened with {quote})", start)
        c = text[j]
        if c == quote:
            end = j + 1
            break
        has_escape = True  # a backslash: skip the escaped character whatever it is
        if j + 1 >= n or text[j + 1] in "\r\n":
            raise ExprError(f"unterminated string literal (opened with {quote})", start)
        i = j + 2
    body = text[q + 1 : end - 1]
    if len(body) > max_string:
        raise ExprError(
            f"string literal of {len(body)} characters exceeds the limit of {max_string}", start
        )
    value = body if raw or not has_escape else _unescape(body, q + 1)
    tokens.append(Token("str", value, start, end))
    return end


def _next_special(text: str, i: int, quote: str) -> int:
    best = len(text)
    for c in (quote, "\\", "\n", "\r"):
        k = text.find(c, i, best)
        if k != -1:
            best = k
    return best


def _unescape(body: str, base: int) -> str:
    """Go ``strconv.Unquote`` rules: byte escapes (``\\x``, octal) must form valid UTF-8."""
    out = bytearray()
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c != "\\":
            k = body.find("\\", i)
            k = n if k == -1 else k
            out += body[i:k].encode("utf-8", "surrogatepass")
            i = k
            continue
        e = body[i + 1]
        pos = base + i
        if e in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[e].encode()
            i += 2
        elif e == "x":
            digits = body[i + 2 : i + 4]
            if len(digits) != 2 or not _is_hex(digits):
                raise ExprError("invalid escape: \\x needs two hexadecimal digits", pos)
            out.append(int(digits, 16))
            i += 4
        elif e in "01234567":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or any(d not in "01234567" for d in digits) or int(digits, 8) > 255:
                raise ExprError(
                    "invalid escape: an octal escape needs three digits up to \\377", pos
                )
            out.append(int(digits, 8))
            i += 4
        elif e in "uU":
            width = 4 if e == "u" else 8
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or not _is_hex(digits):
                raise ExprError(f"invalid escape: \\{e} needs {width} hexadecimal digits", pos)
            code = int(digits, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise ExprError(f"invalid escape: \\{e}{digits} is not a Unicode scalar value", pos)
            out += chr(code).encode()
            i += 2 + width
        else:
            raise ExprError(
                f"invalid escape sequence '\\{e}' in string literal (write '\\\\' for a backslash)",
                pos,
            )
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise ExprError("string literal is not valid UTF-8 after its escapes", base - 1) from None


def _is_hex(s: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in s)
