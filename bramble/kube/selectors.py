"""Label and field selectors: parsing, matching, and the apiserver's errors for bad ones.

Role: what `?labelSelector=` / `?fieldSelector=` mean on lists and watches, what a
Deployment's `spec.selector` or a Service's `spec.selector` picks, and what the scheduler
and node agent match against. Mirrors k8s.io/apimachinery/pkg/labels and pkg/fields.

Invariants:
- Selectors are immutable values; `matches` is a pure function of the labels (or fields).
- Three constructors, three meanings of "nothing given":
  * `parse_label_selector("")` and `LabelSelector.everything()` match everything;
  * `label_selector_from_struct(None)` matches NOTHING (a nil metav1.LabelSelector), while
    `label_selector_from_struct({})` matches EVERYTHING (an empty one);
  * `label_selector_from_set(None or {})` matches everything (labels.SelectorFromSet) -
    a Service without a selector must be special-cased by its caller, as Kubernetes does.
  `empty()` is True only for a selector that does not restrict (matches everything).
- Bad syntax raises `BadRequest` with the apiserver's message, since these arrive in
  query parameters; struct selectors are validated field by field by the API validation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bramble.kube.errors import BadRequest
from bramble.kube.names import is_label_key, is_label_value

# Operators as the string syntax and metav1.LabelSelectorRequirement spell them.
IN, NOT_IN, EXISTS, DOES_NOT_EXIST = "in", "notin", "exists", "!"
EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN = "=", "==", "!=", "gt", "lt"

_STRUCT_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}
_BINARY_OPERATORS = ("in", "notin", "=", "==", "!=", "gt", "lt")


@dataclass(frozen=True)
class Requirement:
    """One clause of a label selector: `key operator values`."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator in (IN, EQUALS, DOUBLE_EQUALS):
            return present and labels[self.key] in self.values
        if self.operator in (NOT_IN, NOT_EQUALS):
            return not present or labels[self.key] not in self.values
        if self.operator == EXISTS:
            return present
        if self.operator == DOES_NOT_EXIST:
            return not present
        if self.operator in (GREATER_THAN, LESS_THAN) and present and len(self.values) == 1:
            try:
                have, want = int(labels[self.key]), int(self.values[0])
            except ValueError:
                return False
            return have > want if self.operator == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        if self.operator == EXISTS:
            return self.key
        if self.operator == DOES_NOT_EXIST:
            return "!" + self.key
        values = ",".join(sorted(self.values))
        if self.operator in (IN, NOT_IN):
            return f"{self.key} {self.operator} ({values})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(self.operator, self.operator)
        return f"{self.key}{symbol}{values}"


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements; `matches_nothing` marks the nil selector."""

    requirements: tuple[Requirement, ...] = ()
    matches_nothing: bool = False

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def nothing(cls) -> LabelSelector:
        return cls(matches_nothing=True)

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.matches_nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def empty(self) -> bool:
        """True when the selector does not restrict anything (it matches every object)."""
        return not self.matches_nothing and not self.requirements

    def requires_exact_match(self, key: str) -> str | None:
        """The single value `key` must have, if the selector pins one (for indexed lookups)."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _requirement(key: str, operator: str, values: Iterable[str]) -> Requirement:
    """Build a requirement, raising ValueError with NewRequirement's message when invalid."""
    values = tuple(values)
    errs: list[str] = []
    key_msgs = is_label_key(key)
    if key_msgs:
        errs.append(f'key: Invalid value: "{key}": ' + "; ".join(key_msgs))
    if operator in (IN, NOT_IN) and not values:
        errs.append("values: Invalid value: []: for 'in', 'notin' operators, "
                    "values set can't be empty")
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS) and len(values) != 1:
        errs.append("values: Invalid value: "
                    + _list(values) + ": exact-match compatibility requires one single value")
    elif operator in (EXISTS, DOES_NOT_EXIST) and values:
        errs.append("values: Invalid value: "
                    + _list(values) + ": values set must be empty for exists and does not exist")
    elif operator in (GREATER_THAN, LESS_THAN):
        if len(values) != 1:
            errs.append("values: Invalid value: " + _list(values)
                        + ": for 'Gt', 'Lt' operators, exactly one value is required")
        for i, v in enumerate(values):
            try:
                int(v)
            except ValueError:
                errs.append(f'values[{i}]: Invalid value: "{v}": '
                            "for 'Gt', 'Lt' operators, the value must be an integer")
    for i, v in enumerate(values):
        msgs = is_label_value(v)
        if msgs:
            errs.append(f'values[{i}][{key}]: Invalid value: "{v}": ' + "; ".join(msgs))
    if errs:
        raise ValueError(errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")
    return Requirement(key, operator, values)


def _list(values: tuple[str, ...]) -> str:
    return "[" + ",".join(f'"{v}"' for v in values) + "]"


def _sorted(requirements: list[Requirement]) -> tuple[Requirement, ...]:
    # Sorted by key (stable) so equal selectors print alike, as labels.Parse does.
    return tuple(sorted(requirements, key=lambda r: r.key))


# --- the string syntax -----------------------------------------------------------------

_END, _IDENT, _ERROR = "end", "ident", "error"
_TOKENS = {")": ")", ",": ",", "!": "!", "==": "==", "=": "=", ">": ">", "in": "in",
           "<": "<", "!=": "!=", "notin": "notin", "(": "("}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")


def _lex(text: str) -> list[tuple[str, str]]:
    """Tokens as the apiserver's lexer cuts them: (kind, literal)."""
    items: list[tuple[str, str]] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= end:
            items.append((_END, ""))
            return items
        if text[pos] in _SPECIAL:
            # Longest run of special characters that still spells an operator: "!=" not "!".
            buffer, last = "", ""
            while pos < end and text[pos] in _SPECIAL:
                if buffer + text[pos] in _TOKENS:
                    buffer += text[pos]
                    last = buffer
                    pos += 1
                elif last:
                    break
                else:
                    buffer += text[pos]
                    pos += 1
            items.append((_TOKENS[last], last) if last else
                         (_ERROR, f"error expected: keyword found '{buffer}'"))
            continue
        start = pos
        while pos < end and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
            pos += 1
        word = text[start:pos]
        items.append((word, word) if word in ("in", "notin") else (_IDENT, word))


class _Parser:
    """Recursive descent over the token list, following labels.Parser step by step."""

    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    def _look(self, values: bool = True) -> tuple[str, str]:
        kind, lit = self.items[self.pos]
        # In value position "in" and "notin" are plain words: `x in (in,notin)`.
        if values and kind in ("in", "notin"):
            kind = _IDENT
        return kind, lit

    def _take(self, values: bool = True) -> tuple[str, str]:
        token = self._look(values)
        self.pos += 1
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, lit = self._look()
            if kind in (_IDENT, "!"):
                try:
                    requirements.append(self._requirement())
                except ValueError as err:
                    raise ValueError(f"unable to parse requirement: {err}") from None
                kind, lit = self._take()
                if kind == _END:
                    return requirements
                if kind != ",":
                    raise ValueError(f"found '{lit}', expected: ',' or 'end of string'")
                kind2, lit2 = self._look()
                if kind2 not in (_IDENT, "!"):
                    raise ValueError(f"found '{lit2}', expected: identifier after ','")
            elif kind == _END:
                return requirements
            else:
                raise ValueError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def _requirement(self) -> Requirement:
        operator = ""
        kind, lit = self._take()
        if kind == "!":
            operator = DOES_NOT_EXIST
            kind, lit = self._take()
        if kind != _IDENT:
            raise ValueError(f"found '{lit}', expected: identifier")
        key = lit
        key_msgs = is_label_key(key)
        if key_msgs:
            raise ValueError(f'Invalid value: "{key}": ' + "; ".join(key_msgs))
        if operator or self._look()[0] in (_END, ","):
            # "!key" is complete on its own; whatever follows is the caller's to reject.
            return _requirement(key, operator or EXISTS, ())
        kind, lit = self._take(values=False)
        operator = {"in": IN, "notin": NOT_IN, "=": EQUALS, "==": DOUBLE_EQUALS,
                    "!=": NOT_EQUALS, ">": GREATER_THAN, "<": LESS_THAN}.get(kind, "")
        if not operator:
            raise ValueError(f"found '{lit}', expected: " + ", ".join(_BINARY_OPERATORS))
        values = self._set_values() if operator in (IN, NOT_IN) else self._exact_value()
        return _requirement(key, operator, sorted(values))

    def _set_values(self) -> set[str]:
        kind, lit = self._take()
        if kind != "(":
            raise ValueError(f"found '{lit}' expected: '('")
        kind, lit = self._look()
        if kind == ")":
            self._take()
            return {""}
        if kind not in (_IDENT, ","):
            raise ValueError(f"found '{lit}', expected: ',', ')' or identifier")
        values: set[str] = set()
        while True:
            kind, lit = self._take()
            if kind == _IDENT:
                values.add(lit)
                kind2, lit2 = self._look()
                if kind2 == ",":
                    continue
                if kind2 == ")":
                    break
                raise ValueError(f"found '{lit2}', expected: ',' or ')'")
            if kind == ",":
                # "(,a)", "(a,)" and "(a,,b)" all include the empty value.
                if not values:
                    values.add("")
                kind2, _ = self._look()
                if kind2 in (")", ","):
                    values.add("")
                if kind2 == ")":
                    break
                continue
            raise ValueError(f"found '{lit}', expected: ',', or identifier")
        kind, lit = self._take()
        if kind != ")":
            raise ValueError(f"found '{lit}', expected: ')'")
        return values

    def _exact_value(self) -> set[str]:
        kind, _ = self._look()
        if kind in (_END, ","):
            return {""}
        kind, lit = self._take()
        if kind == _IDENT:
            return {lit}
        raise ValueError(f"found '{lit}', expected: identifier")


def parse_label_selector(text: str) -> LabelSelector:
    """The `?labelSelector=` syntax: `a=b,c!=d,e in (f,g),h notin (i),j,!k`.

    An empty string matches everything. Raises BadRequest with the apiserver's message.
    """
    try:
        requirements = _Parser(text).parse()
    except ValueError as err:
        raise BadRequest(str(err)) from None
    return LabelSelector(_sorted(requirements))


def label_selector_from_struct(selector: Mapping | None) -> LabelSelector:
    """A metav1.LabelSelector ({matchLabels, matchExpressions}) as a selector.

    None (a nil selector) matches nothing; {} matches everything. Raises BadRequest for an
    unknown operator or invalid key/values - API validation reports those per field first.
    """
    if selector is None:
        return LabelSelector.nothing()
    requirements: list[Requirement] = []
    try:
        for key, value in (selector.get("matchLabels") or {}).items():
            requirements.append(_requirement(key, EQUALS, (value,)))
        for expr in selector.get("matchExpressions") or []:
            op = _STRUCT_OPERATORS.get(expr.get("operator", ""))
            if op is None:
                raise ValueError(f'"{expr.get("operator", "")}" is not a valid label '
                                 "selector operator")
            values = () if op in (EXISTS, DOES_NOT_EXIST) else expr.get("values") or ()
            requirements.append(_requirement(expr.get("key", ""), op, values))
    except (ValueError, AttributeError, TypeError) as err:
        raise BadRequest(f"invalid label selector: {err}") from None
    return LabelSelector(_sorted(requirements))


def selector_to_string(selector: Mapping | None) -> str:
    """A metav1.LabelSelector in the string syntax, as a Scale's `status.selector` shows it.

    Never raises: a selector that does not convert prints as "" (it selects nothing).
    """
    try:
        return str(label_selector_from_struct(selector))
    except BadRequest:
        return ""


def label_selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """A plain map (a Service's or ReplicationController's selector) as equality clauses.

    None and {} both match everything, as labels.SelectorFromSet; no validation is done.
    """
    return LabelSelector(_sorted([Requirement(k, EQUALS, (v,)) for k, v in (labels or {}).items()]))


# --- field selectors ---------------------------------------------------------------------

# Fields every resource supports, whatever its own selectable fields are.
ALWAYS_SELECTABLE = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=" (also for "==") or "!="
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        # A missing field compares as "", as fields.Set.Get does.
        have = fields.get(self.field, "")
        return have == self.value if self.operator == EQUALS else have != self.value

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
        return f"{self.field}{self.operator}{escaped}"


@dataclass(frozen=True)
class FieldSelector:
    """A conjunction of `field=value` / `field!=value` terms over an object's field set."""

    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements

    def requires_exact_match(self, field: str) -> str | None:
        for r in self.requirements:
            if r.field == field and r.operator == EQUALS:
                return r.value
        return None

    def ensure_supported(self, selectable: Iterable[str]) -> None:
        """Raise BadRequest, as the apiserver, for a field the resource cannot select on.

        metadata.name and metadata.namespace are always accepted (see ALWAYS_SELECTABLE).
        """
        allowed = set(ALWAYS_SELECTABLE) | set(selectable)
        for r in self.requirements:
            if r.field not in allowed:
                raise BadRequest(f"field label not supported: {r.field}")

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _split_terms(text: str) -> list[str]:
    # Commas split terms unless escaped; the escape stays for _unescape to check.
    terms, start, escaped = [], 0, False
    for i, c in enumerate(text):
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def _unescape(value: str) -> str:
    out, escaped = [], False
    for c in value:
        if escaped:
            if c not in "\\,=":
                raise BadRequest(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c in ",=":
            raise BadRequest(f"invalid field selector: unescaped character in value: {c!r}")
        else:
            out.append(c)
    if escaped:
        raise BadRequest("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def parse_field_selector(text: str, allowed: Iterable[str] | None = None) -> FieldSelector:
    """The `?fieldSelector=` syntax: `metadata.name=x,status.phase!=Running` (=, ==, !=).

    Values may escape `\\`, `,` and `=` with a backslash. With `allowed` (the resource's
    selectable fields), a field outside it is refused as the apiserver refuses it. Raises
    BadRequest.
    """
    requirements = []
    for term in sorted(_split_terms(text)) if text else []:
        if not term:
            continue
        split = _split_term(term)
        if split is None:
            raise BadRequest(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, value = split
        requirements.append(FieldRequirement(field, NOT_EQUALS if op == "!=" else EQUALS,
                                             _unescape(value)))
    selector = FieldSelector(tuple(requirements))
    if allowed is not None:
        selector.ensure_supported(allowed)
    return selector
