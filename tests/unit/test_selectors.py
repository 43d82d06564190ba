"""Label and field selectors parse, print and match as the apiserver's do."""

import pytest

from bramble.kube.errors import BadRequest
from bramble.kube.selectors import (
    LabelSelector,
    label_selector_from_set,
    label_selector_from_struct,
    parse_field_selector,
    parse_label_selector,
    selector_to_string,
)

POD = {"app": "web", "tier": "front", "version": "3"}

MATCHES = [
    # (selector, labels, matches?)
    ("", POD, True),
    ("app=web", POD, True),
    ("app==web", POD, True),
    ("app=db", POD, False),
    ("app!=db", POD, True),
    ("app!=web", POD, False),
    ("missing!=x", POD, True),  # != matches objects without the label
    ("app in (web,db)", POD, True),
    ("app in (db)", POD, False),
    ("app notin (db)", POD, True),
    ("missing notin (db)", POD, True),
    ("app", POD, True),
    ("missing", POD, False),
    ("!missing", POD, True),
    ("!app", POD, False),
    ("app=web,tier=front", POD, True),
    ("app=web,tier=back", POD, False),
    ("app = web , tier in ( front )", POD, True),  # whitespace is insignificant
    ("app=", {"app": ""}, True),  # the empty value
    ("x in (foo,,baz)", {"x": ""}, True),
    ("version>2", POD, True),
    ("version<2", POD, False),
    ("app>2", POD, False),  # not a number: no match
    ("app in (in,notin)", {"app": "notin"}, True),  # keywords are values in value position
    ("app=web", None, False),
]


@pytest.mark.parametrize(("text", "labels", "expected"), MATCHES, ids=[m[0] for m in MATCHES])
def test_label_selector_matches(text, labels, expected):
    assert parse_label_selector(text).matches(labels) is expected


PRINTED = [
    # (input, canonical string: requirements sorted by key, set values sorted)
    ("b=1,a=2", "a=2,b=1"),
    ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
    ("!a , b==c", "!a,b==c"),
    ("a!=b", "a!=b"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "printed"), PRINTED, ids=[p[0] for p in PRINTED])
def test_label_selector_string(text, printed):
    assert str(parse_label_selector(text)) == printed
    assert str(parse_label_selector(printed)) == printed


LABEL_ERRORS = [
    # (input, exact message of the BadRequest)
    ("a in", "unable to parse requirement: found '' expected: '('"),
    ("a in b", "unable to parse requirement: found 'b' expected: '('"),
    ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a=(", "unable to parse requirement: found '(', expected: identifier"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("a=b,", "found '', expected: identifier after ','"),
    (",a", "found ',', expected: !, identifier, or 'end of string'"),
    ("-a=b", "unable to parse requirement: Invalid value: \"-a\": name part must consist of "
             "alphanumeric characters, '-', '_' or '.', and must start and end with an "
             "alphanumeric character (e.g. 'MyName' or 'my.name' or '123-abc', regex used for "
             "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
    ("a=b$", "unable to parse requirement: values[0][a]: Invalid value: \"b$\": a valid label "
             "must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
             "and must start and end with an alphanumeric character (e.g. 'MyValue' or "
             "'my_value' or '12345', regex used for validation is "
             "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
    ("a>b", "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' "
            "operators, the value must be an integer"),
]


@pytest.mark.parametrize(("text", "message"), LABEL_ERRORS, ids=[e[0] for e in LABEL_ERRORS])
def test_label_selector_errors(text, message):
    with pytest.raises(BadRequest) as err:
        parse_label_selector(text)
    assert err.value.message == message
    assert err.value.code == 400


STRUCTS = [
    # (metav1.LabelSelector, labels, matches?, empty?)
    (None, POD, False, False),  # nil selects nothing
    ({}, POD, True, True),  # empty selects everything
    ({"matchLabels": {}, "matchExpressions": []}, POD, True, True),
    ({"matchLabels": {"app": "web"}}, POD, True, False),
    ({"matchLabels": {"app": "db"}}, POD, False, False),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "x"]}]},
     POD, True, False),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]},
     POD, False, False),
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, POD, True, False),
    ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, POD, False, False),
    ({"matchLabels": {"app": "web"},
      "matchExpressions": [{"key": "gone", "operator": "DoesNotExist"}]}, POD, True, False),
]


@pytest.mark.parametrize(("struct", "labels", "matches", "empty"), STRUCTS,
                         ids=[str(s[0]) for s in STRUCTS])
def test_struct_selectors(struct, labels, matches, empty):
    selector = label_selector_from_struct(struct)
    assert selector.matches(labels) is matches
    assert selector.empty() is empty


STRUCT_ERRORS = [
    ({"matchExpressions": [{"key": "a", "operator": "Like", "values": ["x"]}]},
     '"Like" is not a valid label selector operator'),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
     "values set can't be empty"),
    ({"matchLabels": {"-bad": "x"}}, "name part must consist of"),
]


@pytest.mark.parametrize(("struct", "fragment"), STRUCT_ERRORS, ids=[e[1] for e in STRUCT_ERRORS])
def test_struct_selector_errors(struct, fragment):
    with pytest.raises(BadRequest, match="invalid label selector") as err:
        label_selector_from_struct(struct)
    assert fragment in err.value.message


SETS = [
    # (plain map, labels, matches?) - a Service's selector; None and {} select everything.
    ({"app": "web"}, POD, True),
    ({"app": "web", "tier": "back"}, POD, False),
    ({}, POD, True),
    (None, POD, True),
]


@pytest.mark.parametrize(("labels_map", "labels", "matches"), SETS, ids=[str(s[0]) for s in SETS])
def test_selectors_from_sets(labels_map, labels, matches):
    assert label_selector_from_set(labels_map).matches(labels) is matches


def test_everything_nothing_and_exact_match():
    assert LabelSelector.everything().empty() and LabelSelector.everything().matches({})
    assert not LabelSelector.nothing().empty() and not LabelSelector.nothing().matches({})
    selector = parse_label_selector("app=web,tier in (a,b),zone in (z)")
    assert selector.requires_exact_match("app") == "web"
    assert selector.requires_exact_match("tier") is None
    assert selector.requires_exact_match("zone") == "z"
    assert selector.requires_exact_match("other") is None


SELECTOR_STRINGS = [
    ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["y", "x"]},
                           {"key": "b", "operator": "DoesNotExist"}]}, "a in (x,y),!b"),
    ({}, ""),
    (None, ""),
    ({"matchExpressions": [{"key": "a", "operator": "Bad"}]}, ""),
]


@pytest.mark.parametrize(("struct", "text"), SELECTOR_STRINGS, ids=[s[1] or "-" for s in SELECTOR_STRINGS])
def test_selector_to_string(struct, text):
    assert selector_to_string(struct) == text


POD_FIELDS = {"metadata.name": "web-1", "metadata.namespace": "default",
              "status.phase": "Running", "spec.nodeName": ""}

FIELD_MATCHES = [
    ("", True),
    ("metadata.name=web-1", True),
    ("metadata.name==web-1", True),
    ("metadata.name=web-2", False),
    ("status.phase!=Running", False),
    ("status.phase!=Pending", True),
    ("spec.nodeName=", True),  # unscheduled pods
    ("spec.nodeName!=", False),
    ("metadata.name=web-1,status.phase=Running", True),
    ("metadata.name=web-1,status.phase=Failed", False),
    ("missing=", True),  # a missing field is ""
]


@pytest.mark.parametrize(("text", "expected"), FIELD_MATCHES, ids=[f[0] or "-" for f in FIELD_MATCHES])
def test_field_selector_matches(text, expected):
    assert parse_field_selector(text).matches(POD_FIELDS) is expected


def test_field_selector_escapes_and_exact_match():
    selector = parse_field_selector(r"metadata.name=a\,b\=c\\d")
    assert selector.requirements[0].value == "a,b=c\\d"
    assert selector.matches({"metadata.name": "a,b=c\\d"})
    assert str(selector) == r"metadata.name=a\,b\=c\\d"
    assert parse_field_selector("spec.nodeName=n1,status.phase!=x").requires_exact_match(
        "spec.nodeName") == "n1"
    assert parse_field_selector("status.phase!=x").requires_exact_match("status.phase") is None


FIELD_ERRORS = [
    ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
    ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
    ("a=b=c", "invalid field selector: unescaped character in value: '='"),
    (r"a=b\x", r"invalid field selector: invalid escape sequence: \x"),
    ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
]


@pytest.mark.parametrize(("text", "message"), FIELD_ERRORS, ids=[f[0] for f in FIELD_ERRORS])
def test_field_selector_errors(text, message):
    with pytest.raises(BadRequest) as err:
        parse_field_selector(text)
    assert err.value.message == message


SUPPORTED = [
    # (selector, the type's selectable fields, refused field or None)
    ("metadata.name=x,metadata.namespace=y", (), None),
    ("status.phase=Running", ("status.phase",), None),
    ("spec.foo=bar", ("status.phase",), "spec.foo"),
    ("status.phase=Running", (), "status.phase"),
]


@pytest.mark.parametrize(("text", "allowed", "refused"), SUPPORTED, ids=[s[0] for s in SUPPORTED])
def test_field_selector_supported_fields(text, allowed, refused):
    if refused is None:
        parse_field_selector(text, allowed)
        parse_field_selector(text).ensure_supported(allowed)
        return
    with pytest.raises(BadRequest) as err:
        parse_field_selector(text, allowed)
    assert err.value.message == f"field label not supported: {refused}"
