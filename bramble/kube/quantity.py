"""Kubernetes resource quantities ("250m", "1.5Gi", "1e3"): exact parsing and canonical form.

Role: the one parser and printer of quantities for the master (validation, defaulting), the
scheduler (fit arithmetic) and the node agent (cgroup limits). It mirrors
k8s.io/apimachinery/pkg/api/resource - same grammar, same error messages, same canonical
strings - so a manifest the apiserver accepts is accepted here and prints back the same.

Invariants:
- Values are exact `Fraction`s, never floats. A parsed value is rounded *up*, away from
  zero, to nano precision as the apiserver does ("0.1n" becomes 1n: whoever asks for some
  of a resource gets some).
- BinarySI magnitudes are capped at 2^63-1, like the apiserver; other formats are not.
- Canonical form has no fractional digits and the largest suffix that loses nothing. A
  BinarySI value below 1024 or with a fraction is printed as DecimalSI instead
  ("1.5Gi" -> "1536Mi", "0.5Ki" -> "512", "1.1Ki" -> "1126400m").
- Pure: no I/O, no state.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction

BINARY_SI = "BinarySI"
DECIMAL_SI = "DecimalSI"
DECIMAL_EXPONENT = "DecimalExponent"
FORMATS = (BINARY_SI, DECIMAL_SI, DECIMAL_EXPONENT)

# The apiserver's own messages (resource.ErrFormatWrong, ErrNumeric, ErrSuffix).
FORMAT_ERROR = (
    "quantities must match the regular expression "
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
NUMERIC_ERROR = "unable to parse numeric part of quantity"
SUFFIX_ERROR = "unable to parse quantity's suffix"

_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12,
                     "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXPONENT = {e: s for s, e in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_POWER = {0: "", 1: "Ki", 2: "Mi", 3: "Gi", 4: "Ti", 5: "Pi", 6: "Ei"}

_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")
_EXPONENT = re.compile(r"[+-]?[0-9]+")
_NANO = Fraction(1, 10**9)
_MAX_BINARY = Fraction(2**63 - 1)
# Beyond this a decimal exponent is refused (too large) or collapses to 1n (too small);
# the apiserver keeps going, but 10**(2**31) would take a Pi's whole memory.
_MAX_EXPONENT = 1000

Number = int | float | Fraction | Decimal


def parse_quantity(value: str | Number) -> Fraction:
    """The exact value of a quantity string, or of a JSON int/float given in its place.

    Raises ValueError with the apiserver's message when the string is not a quantity.
    """
    return parse_with_format(value)[0]


def parse_with_format(value: str | Number) -> tuple[Fraction, str]:
    """(value, format) where format is the suffix family the string was written in.

    The format is what the canonical form is printed in: "1Gi" stays binary, "1G" decimal.
    """
    if isinstance(value, bool):
        raise ValueError(FORMAT_ERROR)
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        # JSON numbers are quantities too; repr is the shortest text that round-trips.
        text = repr(value)
    elif isinstance(value, (Fraction, Decimal)):
        return _round_nano(Fraction(value)), DECIMAL_SI
    elif isinstance(value, str):
        # The apiserver trims whitespace before parsing (Quantity.UnmarshalJSON).
        text = value.strip()
    else:
        raise ValueError(FORMAT_ERROR)
    return _parse(text)


def _parse(text: str) -> tuple[Fraction, str]:
    if not text:
        raise ValueError(FORMAT_ERROR)
    negative, num, denom, suffix = _scan(text)
    base, exponent, fmt = _interpret(suffix)
    mantissa = Fraction(int(num + denom), 10 ** len(denom))
    if mantissa == 0:
        return Fraction(0), fmt
    if base == 2:
        amount = mantissa * 2**exponent
    elif exponent > _MAX_EXPONENT:
        raise ValueError(NUMERIC_ERROR)
    elif exponent < -_MAX_EXPONENT:
        amount = _NANO
    else:
        amount = mantissa * Fraction(10) ** exponent
    amount = _round_nano(amount)
    if fmt == BINARY_SI and amount > _MAX_BINARY:
        amount = _MAX_BINARY
    return (-amount if negative else amount), fmt


def _scan(text: str) -> tuple[bool, str, str, str]:
    """Split into sign, integer digits, fraction digits and suffix, as parseQuantityString.

    Mirrors the apiserver's scanner rather than its regular expression, including its
    leniency: "-", "." and "1." all parse (as 0, 0 and 1).
    """
    pos, end = 0, len(text)
    negative = False
    if text[0] in "+-":
        negative = text[0] == "-"
        pos = 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return negative, "0", "", ""
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    num = text[start:pos] or "0"
    denom = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise ValueError(FORMAT_ERROR)
    return negative, num, denom, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, str]:
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE" and _EXPONENT.fullmatch(suffix[1:]):
        exponent = int(suffix[1:])
        if -(2**31) <= exponent < 2**31:
            return 10, exponent, DECIMAL_EXPONENT
    raise ValueError(SUFFIX_ERROR)


def _round_nano(value: Fraction) -> Fraction:
    """Round away from zero to a whole number of nano units (inf.RoundUp at scale 9)."""
    scaled = value / _NANO
    if scaled.denominator == 1:
        return value
    units = math.ceil(scaled) if scaled > 0 else math.floor(scaled)
    return units * _NANO


def _away_from_zero(value: Fraction) -> int:
    return math.ceil(value) if value >= 0 else math.floor(value)


def to_milli(value: str | Number) -> int:
    """Thousandths of the value, rounded up away from zero: cpu millicores ("0.1" -> 100)."""
    return _away_from_zero(parse_quantity(value) * 1000)


def to_int(value: str | Number) -> int:
    """The value as a whole number, rounded up away from zero: bytes ("1.5Ki" -> 1536)."""
    return _away_from_zero(parse_quantity(value))


def format_quantity(value: Number, format: str = DECIMAL_SI) -> str:
    """The canonical string of `value` in `format`, as the apiserver prints a Quantity.

    The value is first rounded up to nano precision, so arithmetic results such as 1/3
    print as they would have been stored ("333333334n").
    """
    if format not in FORMATS:
        raise ValueError(f"unknown quantity format {format!r}, expected one of {FORMATS}")
    amount = _round_nano(Fraction(value))
    if amount == 0:
        return "0"
    sign = "-" if amount < 0 else ""
    magnitude = abs(amount)
    if format == BINARY_SI:
        if magnitude >= 1024 and magnitude.denominator == 1:
            mantissa, power = magnitude.numerator, 0
            while mantissa % 1024 == 0 and power < 6:
                mantissa //= 1024
                power += 1
            return f"{sign}{mantissa}{_BINARY_BY_POWER[power]}"
        # Small or fractional binary values would need rounding: print them in decimal.
        format = DECIMAL_SI
    mantissa, exponent = int(magnitude / _NANO), -9
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    while exponent % 3:
        mantissa *= 10
        exponent -= 1
    if format == DECIMAL_EXPONENT:
        return f"{sign}{mantissa}" + (f"e{exponent}" if exponent else "")
    if exponent > 18:
        # No SI suffix above exa: keep the digits instead ("1000E").
        mantissa *= 10 ** (exponent - 18)
        exponent = 18
    return f"{sign}{mantissa}{_DECIMAL_BY_EXPONENT[exponent]}"


def canonicalize(value: str | Number) -> str:
    """The canonical spelling of a quantity: "0.5" -> "500m", "1024Mi" -> "1Gi", 2 -> "2"."""
    amount, fmt = parse_with_format(value)
    return format_quantity(amount, fmt)
