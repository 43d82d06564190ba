"""Quantities parse, round and print exactly as the apiserver's resource.Quantity does."""

from decimal import Decimal
from fractions import Fraction

import pytest

from bramble.kube.quantity import (
    BINARY_SI,
    DECIMAL_EXPONENT,
    DECIMAL_SI,
    FORMAT_ERROR,
    NUMERIC_ERROR,
    SUFFIX_ERROR,
    canonicalize,
    format_quantity,
    parse_quantity,
    parse_with_format,
    to_int,
    to_milli,
)

F = Fraction
Ki, Mi, Gi = 2**10, 2**20, 2**30

PARSE = [
    # (text, value, format)
    ("0", F(0), DECIMAL_SI),
    ("1", F(1), DECIMAL_SI),
    ("250m", F(1, 4), DECIMAL_SI),
    ("0.5", F(1, 2), DECIMAL_SI),
    (".5", F(1, 2), DECIMAL_SI),
    ("1.", F(1), DECIMAL_SI),
    ("+1", F(1), DECIMAL_SI),
    ("-1.5", F(-3, 2), DECIMAL_SI),
    ("100n", F(100, 10**9), DECIMAL_SI),
    ("5u", F(5, 10**6), DECIMAL_SI),
    ("2k", F(2000), DECIMAL_SI),
    ("3M", F(3 * 10**6), DECIMAL_SI),
    ("1G", F(10**9), DECIMAL_SI),
    ("1T", F(10**12), DECIMAL_SI),
    ("1P", F(10**15), DECIMAL_SI),
    ("1E", F(10**18), DECIMAL_SI),  # capital E alone is exa, not an exponent
    ("1Ki", F(Ki), BINARY_SI),
    ("128Mi", F(128 * Mi), BINARY_SI),
    ("1.5Gi", F(3 * Gi, 2), BINARY_SI),
    ("1Ti", F(2**40), BINARY_SI),
    ("1Pi", F(2**50), BINARY_SI),
    ("1Ei", F(2**60), BINARY_SI),
    ("1e3", F(1000), DECIMAL_EXPONENT),
    ("1E3", F(1000), DECIMAL_EXPONENT),
    ("1e-3", F(1, 1000), DECIMAL_EXPONENT),
    ("1.5e+3", F(1500), DECIMAL_EXPONENT),
    # Rounded up to nano precision, away from zero.
    ("0.1n", F(1, 10**9), DECIMAL_SI),
    ("-0.1n", F(-1, 10**9), DECIMAL_SI),
    ("1e-20", F(1, 10**9), DECIMAL_EXPONENT),
    # BinarySI is capped at 2^63-1, like the apiserver.
    ("9Ei", F(2**63 - 1), BINARY_SI),
    # The apiserver's scanner is lenient about these; so are we.
    ("-", F(0), DECIMAL_SI),
    (".", F(0), DECIMAL_SI),
    ("000", F(0), DECIMAL_SI),
    ("  3 ", F(3), DECIMAL_SI),
]


@pytest.mark.parametrize(("text", "value", "fmt"), PARSE, ids=[c[0] for c in PARSE])
def test_parse(text, value, fmt):
    assert parse_with_format(text) == (value, fmt)
    assert parse_quantity(text) == value


JSON_NUMBERS = [
    # (JSON value, parsed) - manifests often carry `cpu: 2` or `cpu: 0.5` unquoted.
    (2, F(2)),
    (0.5, F(1, 2)),
    (0.1, F(1, 10)),
    (1e-05, F(1, 100000)),
    (F(1, 3), F(333333334, 10**9)),
    (Decimal("0.25"), F(1, 4)),
]


@pytest.mark.parametrize(("raw", "value"), JSON_NUMBERS, ids=[repr(c[0]) for c in JSON_NUMBERS])
def test_parse_numbers(raw, value):
    assert parse_quantity(raw) == value


ERRORS = [
    ("", FORMAT_ERROR),
    ("2x", FORMAT_ERROR),
    ("1.2.3", FORMAT_ERROR),
    ("abc", FORMAT_ERROR),
    ("1 Gi", FORMAT_ERROR),
    ("1e3.5", FORMAT_ERROR),
    ("inf", FORMAT_ERROR),
    ("1e", SUFFIX_ERROR),
    ("1Ki3", SUFFIX_ERROR),
    ("1m5", SUFFIX_ERROR),
    ("1-", SUFFIX_ERROR),
    ("1KiB", FORMAT_ERROR),
    ("1ki", SUFFIX_ERROR),  # suffix letters, but not a suffix
    ("1kI", FORMAT_ERROR),  # "I" is not a suffix letter at all
    ("1e99999999999", SUFFIX_ERROR),
    ("1e2000", NUMERIC_ERROR),
    (True, FORMAT_ERROR),
    (None, FORMAT_ERROR),
    (float("nan"), FORMAT_ERROR),
]


@pytest.mark.parametrize(("raw", "message"), ERRORS, ids=[repr(c[0]) for c in ERRORS])
def test_parse_errors(raw, message):
    with pytest.raises(ValueError) as err:
        parse_quantity(raw)
    assert str(err.value) == message


def test_format_error_message_is_the_apiservers():
    assert FORMAT_ERROR == ("quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


CANONICAL = [
    # (input, canonical form as the apiserver prints it back)
    ("250m", "250m"),
    ("0.25", "250m"),
    ("0.5", "500m"),
    ("1.5", "1500m"),
    ("1000m", "1"),
    ("1", "1"),
    ("0", "0"),
    ("0Mi", "0"),
    ("-1.5", "-1500m"),
    ("128Mi", "128Mi"),
    ("1.5Gi", "1536Mi"),
    ("1024Mi", "1Gi"),
    ("1000Mi", "1000Mi"),
    ("1024", "1024"),  # decimal stays decimal
    ("1000", "1k"),
    ("1500000", "1500k"),
    ("100M", "100M"),
    ("0.5Ki", "512"),  # below 1024: printed as decimal
    ("1.1Ki", "1126400m"),  # fractional bytes: decimal keeps the precision
    ("1e3", "1e3"),
    ("1.5e3", "1500"),
    ("12e6", "12e6"),
    ("1e-20", "1e-9"),
    ("0.1n", "1n"),
    ("1E", "1E"),
    ("1000E", "1000E"),  # no suffix above exa
    ("9Ei", "9223372036854775807"),
    (2, "2"),
    (0.5, "500m"),
    ("+1", "1"),
]


@pytest.mark.parametrize(("raw", "canonical"), CANONICAL, ids=[str(c[0]) for c in CANONICAL])
def test_canonical_round_trip(raw, canonical):
    assert canonicalize(raw) == canonical
    # The canonical form is a fixed point and denotes the same value.
    assert canonicalize(canonical) == canonical
    assert parse_quantity(canonical) == parse_quantity(raw)


FORMAT = [
    # (value, format, printed)
    (F(1, 4), DECIMAL_SI, "250m"),
    (F(128 * Mi), BINARY_SI, "128Mi"),
    (F(3 * Gi, 2), BINARY_SI, "1536Mi"),
    (F(Gi), DECIMAL_SI, "1073741824"),
    (F(1000 * Ki), BINARY_SI, "1000Ki"),
    (F(10**9), BINARY_SI, "1000000000"),
    (F(1000), DECIMAL_EXPONENT, "1e3"),
    (F(1, 1000), DECIMAL_EXPONENT, "1e-3"),
    (F(12), DECIMAL_EXPONENT, "12"),
    (F(1, 3), DECIMAL_SI, "333333334n"),  # rounded up to nano first
    (F(-3, 2), BINARY_SI, "-1500m"),
    (-2048, BINARY_SI, "-2Ki"),
    (0, BINARY_SI, "0"),
    (2**70, BINARY_SI, "1024Ei"),  # the largest binary suffix is Ei
    (10**21, DECIMAL_SI, "1000E"),
]


@pytest.mark.parametrize(("value", "fmt", "printed"), FORMAT, ids=[c[2] for c in FORMAT])
def test_format(value, fmt, printed):
    assert format_quantity(value, fmt) == printed


def test_format_rejects_unknown_format():
    with pytest.raises(ValueError, match="unknown quantity format"):
        format_quantity(1, "Roman")


INTEGERS = [
    # (quantity, to_milli, to_int) - both round up, away from zero, as MilliValue/Value.
    ("1", 1000, 1),
    ("250m", 250, 1),
    ("0.1", 100, 1),
    ("100n", 1, 1),
    ("1.5Ki", 1536000, 1536),
    ("128Mi", 128 * Mi * 1000, 128 * Mi),
    ("0", 0, 0),
    ("-0.5", -500, -1),
    ("-100n", -1, -1),
    (2, 2000, 2),
    (0.25, 250, 1),
]


@pytest.mark.parametrize(("raw", "milli", "whole"), INTEGERS, ids=[str(c[0]) for c in INTEGERS])
def test_to_milli_and_to_int(raw, milli, whole):
    assert to_milli(raw) == milli
    assert to_int(raw) == whole
