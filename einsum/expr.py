"""Expressions of the cascade language: syntax tree, parser and canonical printer.

An Einsum line ``OUT[i, j] = EXPR`` is parsed into an :class:`Access` (the left-hand side) and an
expression tree.  The grammar (lowest precedence first)::

    expr     := reduce | or
    reduce   := REDUCER '[' var (',' var)* ']' expr        # extends to the end, like a Sigma
    or       := and ('or' and)*
    and      := not ('and' not)*
    not      := 'not' not | cmp
    cmp      := add (('<'|'<='|'>'|'>='|'=='|'!=') add)?
    add      := mul (('+'|'-') mul)*
    mul      := unary (('*'|'/') unary)*
    unary    := '-' unary | atom
    atom     := NUMBER | 'inf' | NAME | NAME '[' expr (',' expr)* ']' | NAME '(' expr (',' expr)* ')'
              | '(' expr ')'

Parse errors are :class:`SyntaxProblem` with the 0-based column; the spec loader turns them into
:class:`~einloom.einsum.errors.SpecError` with file, line and Einsum.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Iterator


class SyntaxProblem(Exception):
    """A syntax error inside one expression, at a column (0-based)."""

    def __init__(self, message: str, column: int, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.column = column
        self.hint = hint


# --------------------------------------------------------------------------------------------- nodes
@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Name:
    """A param, a rank extent (upper case) or a rank variable (lower case), resolved by the loader."""

    name: str


@dataclass(frozen=True)
class Access:
    tensor: str
    indices: tuple["Expr", ...]


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple["Expr", ...]


@dataclass(frozen=True)
class BinOp:
    op: str
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class Unary:
    op: str  # "-" or "not"
    operand: "Expr"


@dataclass(frozen=True)
class Reduce:
    op: str
    vars: tuple[str, ...]
    body: "Expr"


Expr = Num | Name | Access | Call | BinOp | Unary | Reduce

ARITHMETIC = ("+", "-", "*", "/")
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
LOGICAL = ("and", "or")

# ----------------------------------------------------------------------------------------- tokenizer
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op><=|>=|==|!=|[-+*/<>()\[\],=])
""", re.VERBOSE)


@dataclass(frozen=True)
class Token:
    kind: str  # num, name, op, end
    text: str
    column: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise SyntaxProblem(f"unexpected character {text[pos]!r}", pos,
                                "use + - * / ( ) [ ] , comparisons, names and numbers")
        kind = match.lastgroup
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# -------------------------------------------------------------------------------------------- parser
class Parser:
    """Recursive-descent parser over one expression string.

    ``is_reducer(name)`` tells whether ``name[...]`` starts a reduction (sum, max, ... and registered
    reductions) rather than a tensor access.
    """

    def __init__(self, text: str, is_reducer: Callable[[str], bool]):
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.is_reducer = is_reducer

    # helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tok
        self.pos += 1
        return token

    def expect(self, text: str, what: str, hint: str | None = None) -> Token:
        if self.tok.text != text:
            found = self.tok.text or "end of line"
            if hint is None and text in (")", "]"):
                hint = "unbalanced parentheses? every '(' needs a ')' and every '[' a ']'"
            raise SyntaxProblem(f"expected {text!r} {what}, found {found!r}", self.tok.column, hint)
        return self.advance()

    def at_end(self) -> bool:
        return self.tok.kind == "end"

    # grammar
    def parse_expression(self) -> Expr:
        expr = self.expr()
        if not self.at_end():
            raise SyntaxProblem(f"unexpected {self.tok.text!r} after a complete expression", self.tok.column,
                                "a missing operator or an unbalanced parenthesis?")
        return expr

    def expr(self) -> Expr:
        if self.tok.kind == "name" and self.peek().text == "[" and self.is_reducer(self.tok.text):
            return self.reduce()
        return self.or_()

    def reduce(self) -> Expr:
        op = self.advance().text
        self.expect("[", f"after reduction {op!r}", f"write {op}[m] X[m, p]")
        names = [self.var_name(f"rank variable to reduce with {op!r}")]
        while self.tok.text == ",":
            self.advance()
            names.append(self.var_name(f"rank variable to reduce with {op!r}"))
        self.expect("]", f"to close the ranks of reduction {op!r}")
        if self.at_end() or self.tok.text in (")", ",", "]"):
            raise SyntaxProblem(f"reduction {op}[{', '.join(names)}] has no operand", self.tok.column,
                                f"write {op}[{', '.join(names)}] X[...]")
        return Reduce(op, tuple(names), self.expr())

    def var_name(self, what: str) -> str:
        if self.tok.kind != "name":
            raise SyntaxProblem(f"expected a {what}, found {self.tok.text or 'end of line'!r}", self.tok.column,
                                "list the lower-case rank variables to reduce, e.g. sum[m] X[m, p]")
        return self.advance().text

    def or_(self) -> Expr:
        left = self.and_()
        while self.tok.text == "or":
            self.advance()
            left = BinOp("or", left, self.operand(self.and_))
        return left

    def and_(self) -> Expr:
        left = self.not_()
        while self.tok.text == "and":
            self.advance()
            left = BinOp("and", left, self.operand(self.not_))
        return left

    def not_(self) -> Expr:
        if self.tok.text == "not":
            self.advance()
            return Unary("not", self.operand(self.not_))
        return self.cmp()

    def cmp(self) -> Expr:
        left = self.add()
        if self.tok.text in COMPARISONS:
            op = self.advance().text
            left = BinOp(op, left, self.operand(self.add))
            if self.tok.text in COMPARISONS:
                raise SyntaxProblem("chained comparisons are not supported", self.tok.column,
                                    "write (a <= b) and (b <= c)")
        return left

    def add(self) -> Expr:
        left = self.mul()
        while self.tok.text in ("+", "-"):
            op = self.advance().text
            left = BinOp(op, left, self.operand(self.mul))
        return left

    def mul(self) -> Expr:
        left = self.unary()
        while self.tok.text in ("*", "/"):
            op = self.advance().text
            left = BinOp(op, left, self.operand(self.unary))
        return left

    def operand(self, rule: Callable[[], Expr]) -> Expr:
        """An operand of a binary operator; a reduction there swallows the rest of the line."""
        if self.tok.kind == "name" and self.peek().text == "[" and self.is_reducer(self.tok.text):
            return self.reduce()
        if self.at_end() or self.tok.text in (")", ",", "]"):
            raise SyntaxProblem(f"missing operand before {self.tok.text or 'end of line'!r}", self.tok.column,
                                "a binary operator needs an operand on each side")
        return rule()

    def unary(self) -> Expr:
        if self.tok.text == "-":
            self.advance()
            operand = self.operand(self.unary)
            if isinstance(operand, Num):
                return Num(-operand.value)
            return Unary("-", operand)
        if self.tok.text == "+":
            self.advance()
            return self.operand(self.unary)
        return self.atom()

    def atom(self) -> Expr:
        token = self.tok
        if token.kind == "num":
            self.advance()
            return Num(float(token.text))
        if token.kind == "name":
            if token.text in ("and", "or", "not"):
                raise SyntaxProblem(f"{token.text!r} needs an operand before it", token.column,
                                    "write a and b, a or b, not a")
            self.advance()
            if token.text == "inf":
                return Num(math.inf)
            if self.tok.text == "[":
                if self.is_reducer(token.text):  # pragma: no cover - handled in expr()
                    raise SyntaxProblem("reduction in an unexpected place", token.column)
                self.advance()
                return Access(token.text, tuple(self.arguments("]", f"index of {token.text}")))
            if self.tok.text == "(":
                self.advance()
                return Call(token.text, tuple(self.arguments(")", f"argument of {token.text}")))
            return Name(token.text)
        if token.text == "(":
            self.advance()
            inner = self.expr()
            self.expect(")", "to close '('")
            return inner
        found = token.text or "end of line"
        raise SyntaxProblem(f"expected a number, a name or '(', found {found!r}", token.column,
                            "an operand is missing here (two operators in a row?)")

    def arguments(self, close: str, what: str) -> Iterator[Expr]:
        if self.tok.text == close:
            opener = "(" if close == ")" else "["
            raise SyntaxProblem(f"empty {opener}{close}: missing {what}", self.tok.column,
                                "write at least one expression between the brackets")
        args = [self.expr()]
        while self.tok.text == ",":
            self.advance()
            args.append(self.expr())
        self.expect(close, f"after the last {what}")
        return args


def parse_expression(text: str, is_reducer: Callable[[str], bool]) -> Expr:
    """Parse one expression (no ``=``)."""
    return Parser(text, is_reducer).parse_expression()


def parse_einsum(text: str, is_reducer: Callable[[str], bool]) -> tuple[Expr, Expr, int]:
    """Parse ``LHS = RHS``; returns (lhs, rhs, column where the RHS starts)."""
    depth = 0
    split = None
    for i, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "=" and depth == 0:
            before = text[i - 1] if i else ""
            after = text[i + 1] if i + 1 < len(text) else ""
            if before not in "<>!=" and after != "=":
                split = i
                break
    if split is None:
        raise SyntaxProblem("an Einsum needs '=': OUTPUT[ranks] = EXPRESSION", 0,
                            "e.g. QK[m, p] = Q[e, p] * K[e, m]")
    lhs_text, rhs_text = text[:split], text[split + 1:]
    try:
        lhs = parse_expression(lhs_text, lambda _name: False)
    except SyntaxProblem as problem:
        raise SyntaxProblem(f"left-hand side: {problem.message}", problem.column, problem.hint) from None
    if not rhs_text.strip():
        raise SyntaxProblem("nothing after '='", split + 1, "write the expression that produces the output")
    try:
        rhs = parse_expression(rhs_text, is_reducer)
    except SyntaxProblem as problem:
        raise SyntaxProblem(problem.message, problem.column + split + 1, problem.hint) from None
    return lhs, rhs, split + 1


# ------------------------------------------------------------------------------------------- printer
_PRECEDENCE = {"or": 1, "and": 2, "not": 3, **{op: 4 for op in COMPARISONS}, "+": 5, "-": 5, "*": 6, "/": 6}
_UNARY_MINUS = 7
_ATOM = 9


def format_number(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def to_text(expr: Expr) -> str:
    """The canonical text of an expression: minimal parentheses, ``, `` between arguments."""
    return _fmt(expr)[0]


def _fmt(expr: Expr) -> tuple[str, int]:
    if isinstance(expr, Num):
        text = format_number(expr.value)
        return text, (_UNARY_MINUS if expr.value < 0 else _ATOM)
    if isinstance(expr, Name):
        return expr.name, _ATOM
    if isinstance(expr, Access):
        return f"{expr.tensor}[{', '.join(to_text(i) for i in expr.indices)}]", _ATOM
    if isinstance(expr, Call):
        return f"{expr.func}({', '.join(to_text(a) for a in expr.args)})", _ATOM
    if isinstance(expr, Reduce):
        return f"{expr.op}[{', '.join(expr.vars)}] {to_text(expr.body)}", 0
    if isinstance(expr, Unary):
        if expr.op == "not":
            inner, prec = _fmt(expr.operand)
            return "not " + (inner if prec >= _PRECEDENCE["not"] else f"({inner})"), _PRECEDENCE["not"]
        inner, prec = _fmt(expr.operand)
        return "-" + (inner if prec > _UNARY_MINUS or (prec == _ATOM) else f"({inner})"), _UNARY_MINUS
    if isinstance(expr, BinOp):
        prec = _PRECEDENCE[expr.op]
        left, lprec = _fmt(expr.left)
        right, rprec = _fmt(expr.right)
        if lprec < prec or lprec == 0 or (lprec == prec and expr.op in COMPARISONS):
            left = f"({left})"
        # right operands need parentheses at equal precedence (a - (b - c)); comparisons never chain
        if rprec <= prec or rprec == 0:
            right = f"({right})"
        return f"{left} {expr.op} {right}", prec
    raise TypeError(f"not an expression node: {expr!r}")


def walk(expr: Expr) -> Iterator[Expr]:
    """All nodes of ``expr``, parents before children (index expressions included)."""
    yield expr
    if isinstance(expr, Access):
        for index in expr.indices:
            yield from walk(index)
    elif isinstance(expr, Call):
        for arg in expr.args:
            yield from walk(arg)
    elif isinstance(expr, BinOp):
        yield from walk(expr.left)
        yield from walk(expr.right)
    elif isinstance(expr, Unary):
        yield from walk(expr.operand)
    elif isinstance(expr, Reduce):
        yield from walk(expr.body)
