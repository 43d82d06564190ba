"""Name, key and value formats give the apiserver's messages, and none for valid values."""

import random

import pytest

from bramble.kube import names

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name' or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QUALIFIED_NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName' or 'my.name' or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue' or 'my_value' or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name' or 'KEY_NAME' or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)

CASES = [
    # (check, value, expected messages) - [] means valid.
    (names.is_dns1123_subdomain, "example.com", []),
    (names.is_dns1123_subdomain, "a", []),
    (names.is_dns1123_subdomain, "1-2.3", []),
    (names.is_dns1123_subdomain, "Example.com", [SUBDOMAIN_MSG]),
    (names.is_dns1123_subdomain, "-a", [SUBDOMAIN_MSG]),
    (names.is_dns1123_subdomain, "a..b", [SUBDOMAIN_MSG]),
    (names.is_dns1123_subdomain, "", [SUBDOMAIN_MSG]),
    (names.is_dns1123_subdomain, "a" * 253, []),
    (names.is_dns1123_subdomain, "a" * 254, ["must be no more than 253 characters"]),
    (names.is_dns1123_label, "my-name", []),
    (names.is_dns1123_label, "123-abc", []),
    (names.is_dns1123_label, "a" * 63, []),
    (names.is_dns1123_label, "a" * 64, ["must be no more than 63 characters"]),
    (names.is_dns1123_label, "my.name", ["must not contain dots"]),
    (names.is_dns1123_label, "My-name", [LABEL_MSG]),
    (names.is_dns1123_label, "name-", [LABEL_MSG]),
    (names.is_dns1035_label, "my-name", []),
    (names.is_dns1035_label, "1abc", [DNS1035_MSG]),
    (names.is_dns1035_label, "a" * 64, ["must be no more than 63 characters"]),
    (names.is_qualified_name, "app", []),
    (names.is_qualified_name, "app.kubernetes.io/name", []),
    (names.is_qualified_name, "My_Name.1", []),
    (names.is_qualified_name, "-app", [QUALIFIED_NAME_PART_MSG]),
    (names.is_qualified_name, "", ["name part must be non-empty", QUALIFIED_NAME_PART_MSG]),
    (names.is_qualified_name, "/app", ["prefix part must be non-empty"]),
    (names.is_qualified_name, "Example.com/app", ["prefix part " + SUBDOMAIN_MSG]),
    (names.is_qualified_name, "a" * 64, ["name part must be no more than 63 characters"]),
    (names.is_label_key, "a/b/c", [
        "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
        "start and end with an alphanumeric character (e.g. 'MyName' or 'my.name' or '123-abc', "
        "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an "
        "optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]),
    (names.is_label_value, "", []),
    (names.is_label_value, "v1.2_beta-3", []),
    (names.is_label_value, "a b", [LABEL_VALUE_MSG]),
    (names.is_label_value, "a" * 64, ["must be no more than 63 characters"]),
    (names.is_config_map_key, "key.name", []),
    (names.is_config_map_key, "KEY_NAME", []),
    (names.is_config_map_key, "a/b", [CONFIG_KEY_MSG]),
    (names.is_config_map_key, ".", ["must not be '.'"]),
    (names.is_config_map_key, "..", ["must not be '..'"]),
    (names.is_config_map_key, "..data", ["must not start with '..'"]),
    (names.is_env_var_name, "MY_VAR", []),
    (names.is_env_var_name, "1.weird-but ok", []),  # the relaxed rule (GA in 1.34)
    (names.is_env_var_name, "", ["environment variable name must be non-empty"]),
    (names.is_env_var_name, "A=B", ["a valid environment variable name must consist only of "
                                    "printable ASCII characters other than '='"]),
    (names.is_port_name, "http", []),
    (names.is_port_name, "metrics-2", []),
    (names.is_port_name, "Http", ["must contain only alpha-numeric characters (a-z, 0-9), and "
                                  "hyphens (-)"]),
    (names.is_port_name, "123", ["must contain at least one letter (a-z)"]),
    (names.is_port_name, "a--b", ["must not contain consecutive hyphens"]),
    (names.is_port_name, "-a", ["must not begin or end with a hyphen"]),
    (names.is_port_name, "a" * 16, ["must be no more than 15 characters"]),
    (names.is_port_number, 1, []),
    (names.is_port_number, 65535, []),
    (names.is_port_number, 0, ["must be between 1 and 65535, inclusive"]),
    (names.is_port_number, 65536, ["must be between 1 and 65535, inclusive"]),
    (names.is_percent, "25%", []),
    (names.is_percent, "25", ["a valid percent string must be a numeric string followed by an "
                              "ending '%' (e.g. '1%' or '93%', regex used for validation is "
                              "'[0-9]+%')"]),
    (names.is_http_header_name, "X-Header", []),
    (names.is_http_header_name, "X Header", [
        "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. "
        "'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')"]),
]


@pytest.mark.parametrize(("check", "value", "expected"), CASES,
                         ids=[f"{c[0].__name__}-{str(c[1])[:20]}" for c in CASES])
def test_checks(check, value, expected):
    assert check(value) == expected


PREFIXES = [
    # (check, generateName, valid as a prefix?)
    (names.name_is_dns_subdomain, "web-", True),  # a trailing dash is fine in a prefix
    (names.name_is_dns_subdomain, "web", True),
    (names.name_is_dns_subdomain, "Web-", False),
    (names.name_is_dns_label, "ns-", True),
    (names.name_is_dns1035_label, "svc-", True),
    (names.name_is_dns1035_label, "1svc-", False),
]


@pytest.mark.parametrize(("check", "prefix", "ok"), PREFIXES, ids=[c[1] for c in PREFIXES])
def test_generate_name_prefixes(check, prefix, ok):
    assert (check(prefix, True) == []) is ok
    # Not as a full name: the trailing dash makes it invalid.
    if prefix.endswith("-"):
        assert check(prefix, False) != []


def test_annotations_size():
    assert names.check_annotations_size({"a": "x" * (256 * 1024 - 1)}) == []
    assert names.check_annotations_size({"a": "x" * (256 * 1024)}) == [
        "must have at most 262144 bytes"]


def test_generate_name():
    rng = random.Random(1)
    name = names.generate_name("web-", rng)
    assert name.startswith("web-") and len(name) == 9
    assert set(name[4:]) <= set("bcdfghjklmnpqrstvwxz2456789")
    long = names.generate_name("x" * 80, rng)
    assert len(long) == 63 and long.startswith("x" * 58)
