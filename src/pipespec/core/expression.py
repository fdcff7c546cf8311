"""The grammar of a ``derive`` expression (``features.derived``), and its evaluator.

An expression is parsed once, with Python's own parser (``ast``), into a small typed tree:
column names, numbers, arithmetic (``+ - * / // % **``), comparisons, boolean operators
(``and or not``, and ``& | ~`` as their elementwise forms) and calls of a fixed table of
numpy functions (``FUNCTIONS``). Everything else (attribute access, subscripts, ``@``,
other calls, keywords, strings, lambdas, names with ``__``) is refused with the offending
token named, so an expression is data and never code: it is checked when the configuration
is composed and again when a bundle is loaded, and ``evaluate`` computes it with numpy alone.
pandas' ``eval`` is not used.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pipespec.core.errors import DocumentError

if TYPE_CHECKING:
    import numpy as np

MAX_LENGTH = 2000  # characters: an expression is a formula, not a program
MAX_DEPTH = 64  # nesting of the tree (Python's parser recurses on deeper text)


class ExpressionError(DocumentError):
    """A derive expression outside the grammar; ``token`` names what is not allowed."""

    def __init__(self, message: str, *, token: str | None = None) -> None:
        super().__init__(message)
        self.token = token


# name -> (numpy function name, least and most arguments)
FUNCTIONS: dict[str, tuple[str, int, int]] = {
    "abs": ("abs", 1, 1),
    "sign": ("sign", 1, 1),
    "sqrt": ("sqrt", 1, 1),
    "exp": ("exp", 1, 1),
    "expm1": ("expm1", 1, 1),
    "log": ("log", 1, 1),
    "log1p": ("log1p", 1, 1),
    "log2": ("log2", 1, 1),
    "log10": ("log10", 1, 1),
    "sin": ("sin", 1, 1),
    "cos": ("cos", 1, 1),
    "tan": ("tan", 1, 1),
    "arcsin": ("arcsin", 1, 1),
    "arccos": ("arccos", 1, 1),
    "arctan": ("arctan", 1, 1),
    "arctan2": ("arctan2", 2, 2),
    "sinh": ("sinh", 1, 1),
    "cosh": ("cosh", 1, 1),
    "tanh": ("tanh", 1, 1),
    "floor": ("floor", 1, 1),
    "ceil": ("ceil", 1, 1),
    "round": ("round", 1, 1),
    "minimum": ("fmin", 2, 2),  # NaN-ignoring, like pandas' min
    "maximum": ("fmax", 2, 2),
    "clip": ("clip", 3, 3),
    "where": ("where", 3, 3),
    "isnull": ("isnan", 1, 1),
    "notnull": ("isnan", 1, 1),  # negated below
}

_ARITHMETIC: dict[type, str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.BitAnd: "&",
    ast.BitOr: "|",
}
_COMPARE: dict[type, str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}
_UNARY: dict[type, str] = {ast.USub: "-", ast.UAdd: "+", ast.Not: "not", ast.Invert: "~"}
_REFUSED_OPS: dict[type, str] = {
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitXor: "^",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}


# --- the tree ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Unary:
    op: str  # - + not ~
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str  # + - * / // % ** & |
    left: Node
    right: Node


@dataclass(frozen=True)
class Compare:
    ops: tuple[str, ...]  # a < b <= c: ("<", "<=")
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Logical:
    op: str  # and | or
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Call:
    function: str  # a key of FUNCTIONS
    args: tuple[Node, ...]


Node = Column | Number | Unary | Binary | Compare | Logical | Call


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its text, its tree and the columns it reads (sorted)."""

    text: str
    tree: Node
    columns: tuple[str, ...]


# --- parsing -----------------------------------------------------------------------------


@lru_cache(maxsize=512)
def parse(text: str) -> Expression:
    """``text`` as an expression tree; ``ExpressionError`` names the token outside the grammar."""
    if not isinstance(text, str):
        raise ExpressionError(f"expected an expression (text), not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_LENGTH} characters")
    if "\x00" in text:
        raise ExpressionError("expression holds a NUL character", token="\\x00")
    if "@" in text:  # pandas' local-variable syntax; Python's matrix product
        raise ExpressionError("'@' is not allowed in an expression", token="@")
    if not text.strip():
        raise ExpressionError("expression is empty")
    try:
        node = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse '{_short(text)}': {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError(f"cannot parse '{_short(text)}': nested too deeply") from None
    columns: set[str] = set()
    tree = _build(node.body, columns, 0)
    return Expression(text=text, tree=tree, columns=tuple(sorted(columns)))


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _segment(node: ast.AST) -> str:
    try:
        return _short(ast.unparse(node))
    except Exception:  # only for the message
        return type(node).__name__


def _refuse(node: ast.AST, what: str, token: str) -> ExpressionError:
    return ExpressionError(f"{what} is not allowed in an expression: '{token}'", token=token)


def _build(node: ast.AST, columns: set[str], depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise ExpressionError(f"expression is nested more than {MAX_DEPTH} levels deep")
    deeper = depth + 1
    if isinstance(node, ast.Name):
        if "__" in node.id:
            raise _refuse(node, "a name with '__'", node.id)
        if node.id in FUNCTIONS:
            raise _refuse(node, "a function without a call", node.id)
        columns.add(node.id)
        return Column(node.id)
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            return Number(float(value))
        if isinstance(value, int | float):
            return Number(float(value))
        raise _refuse(node, f"a {type(value).__name__} constant", _segment(node))
    if isinstance(node, ast.UnaryOp):
        return Unary(_UNARY[type(node.op)], _build(node.operand, columns, deeper))
    if isinstance(node, ast.BinOp):
        op = type(node.op)
        if op not in _ARITHMETIC:
            token = _REFUSED_OPS.get(op, type(node.op).__name__)
            raise _refuse(node, "the operator", token)
        return Binary(
            _ARITHMETIC[op], _build(node.left, columns, deeper), _build(node.right, columns, deeper)
        )
    if isinstance(node, ast.BoolOp):
        word = "and" if isinstance(node.op, ast.And) else "or"
        return Logical(word, tuple(_build(v, columns, deeper) for v in node.values))
    if isinstance(node, ast.Compare):
        ops = []
        for op_node in node.ops:
            kind = type(op_node)
            if kind not in _COMPARE:
                raise _refuse(node, "the operator", _REFUSED_OPS.get(kind, kind.__name__))
            ops.append(_COMPARE[kind])
        operands = (node.left, *node.comparators)
        return Compare(tuple(ops), tuple(_build(v, columns, deeper) for v in operands))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise _refuse(node, "a call of anything but a function name", _segment(node.func))
        name = node.func.id
        if name not in FUNCTIONS:
            raise ExpressionError(
                f"function '{name}' is not allowed in an expression (not in its table of "
                "numpy functions)",
                token=name,
            )
        if node.keywords:
            keyword = node.keywords[0].arg or "**"
            raise _refuse(node, "a keyword argument", f"{keyword}=")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise _refuse(node, "a starred argument", "*")
        _, least, most = FUNCTIONS[name]
        if not least <= len(node.args) <= most:
            count = f"{least}" if least == most else f"{least} to {most}"
            raise ExpressionError(
                f"function '{name}' takes {count} argument(s), not {len(node.args)}", token=name
            )
        return Call(name, tuple(_build(a, columns, deeper) for a in node.args))
    if isinstance(node, ast.Attribute):
        raise _refuse(node, "attribute access", f".{node.attr}")
    if isinstance(node, ast.Subscript):
        raise _refuse(node, "a subscript", _segment(node))
    if isinstance(node, ast.IfExp):
        raise _refuse(node, "'x if c else y' (use where(c, x, y))", "if")
    raise _refuse(node, f"'{type(node).__name__}'", _segment(node))


# --- evaluation --------------------------------------------------------------------------


def evaluate(expression: Expression, columns: Mapping[str, np.ndarray], rows: int) -> np.ndarray:
    """The expression's values (float64, one per row) for float64 ``columns``. Comparisons
    and boolean operators give 0/1; NaN compares false, as in numpy and pandas."""
    import numpy as np

    with np.errstate(all="ignore"):
        value = _eval(expression.tree, columns)
        result = np.asarray(value, dtype="float64")
    if result.ndim == 0:
        result = np.full(rows, float(result))
    return result


def _eval(node: Node, columns: Mapping[str, Any]) -> Any:
    import numpy as np

    if isinstance(node, Column):
        return columns[node.name]
    if isinstance(node, Number):
        return np.float64(node.value)
    if isinstance(node, Unary):
        operand = _eval(node.operand, columns)
        if node.op == "-":
            return np.negative(operand)
        if node.op == "+":
            return operand
        return np.logical_not(_truth(operand))
    if isinstance(node, Binary):
        left, right = _eval(node.left, columns), _eval(node.right, columns)
        if node.op == "&":
            return np.logical_and(_truth(left), _truth(right))
        if node.op == "|":
            return np.logical_or(_truth(left), _truth(right))
        return _BINARY[node.op](_number(left), _number(right))
    if isinstance(node, Compare):
        values = [_number(_eval(v, columns)) for v in node.operands]
        out = None
        for op, left, right in zip(node.ops, values, values[1:], strict=False):
            part = _COMPARISONS[op](left, right)
            out = part if out is None else np.logical_and(out, part)
        return out
    if isinstance(node, Logical):
        combine = np.logical_and if node.op == "and" else np.logical_or
        parts = [_truth(_eval(v, columns)) for v in node.operands]
        out = parts[0]
        for part in parts[1:]:
            out = combine(out, part)
        return out
    args = [_eval(a, columns) for a in node.args]
    if node.function == "where":
        return np.where(_truth(args[0]), _number(args[1]), _number(args[2]))
    numbers = [_number(a) for a in args]
    if node.function == "clip":
        # NaN bounds leave that side open; a NaN value stays NaN
        lower = np.where(np.isnan(numbers[1]), -np.inf, numbers[1])
        upper = np.where(np.isnan(numbers[2]), np.inf, numbers[2])
        return np.minimum(np.maximum(numbers[0], lower), upper)
    found = getattr(np, FUNCTIONS[node.function][0])(*numbers)
    return np.logical_not(found) if node.function == "notnull" else found


def _number(value: Any) -> Any:
    import numpy as np

    return np.asarray(value, dtype="float64") if np.asarray(value).dtype == bool else value


def _truth(value: Any) -> Any:
    """Elementwise truth: non-zero is true; NaN (missing) is false."""
    import numpy as np

    array = np.asarray(value)
    if array.dtype == bool:
        return array
    return np.asarray(array != 0) & ~np.isnan(array.astype("float64"))


def _binary_table() -> dict[str, Callable[[Any, Any], Any]]:
    import operator

    return {
        "+": operator.add,
        "-": operator.sub,
        "*": operator.mul,
        "/": operator.truediv,
        "//": operator.floordiv,
        "%": operator.mod,
        "**": operator.pow,
    }


_BINARY = _binary_table()
_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
