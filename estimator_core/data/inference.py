"""The type of a text column (CSV/TSV), decided from every one of its values.

Rules, per column, over the whole file (so the decision never depends on where a value is):

- A value is *missing* when it is one of :data:`MISSING_TEXT`, an *integer* when it is an
  integer literal (``-12``, ``+7``), a *float* when it is a decimal or exponent literal
  (``1.5``, ``.5``, ``5.``, ``-1e-3``); spaces around a number are allowed. Anything else
  (``oops``, ``1,5``, ``2020-01-02``, ``inf``) is *text*.
- The column is numeric when at least ``numeric_threshold`` (default 0.95) of its present
  (non-missing) values are numbers: ``int64`` when they are all integers, else ``float32``.
  Its text values are then bad rows (``on_bad_row``: an error naming the line, or skipped and
  counted), never a reason to turn the column into text.
- A column of numbers is kept as text (``string``), and reported, when a number has leading
  zeros (``00501``: a code, not a quantity), or when its integers are numbers only because of
  ones beyond int64 (identifiers); a few such integers among others are bad rows.
- An integer column with missing values becomes ``float32`` when ``allow_missing`` covers it,
  so the missing values can be stored as NaN (a label keeps its type: it may not be missing).
- Otherwise the column is text. A text column whose values are mostly numbers (over half) is
  reported as *looking numeric*, in ``stats.json`` and the log.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

NUMERIC_THRESHOLD = 0.95
MISSING_TEXT = ("", "nan", "NaN", "NA", "null")
LOOKS_NUMERIC = 0.5  # a text column with more numbers than this fraction is reported
_INT64_DIGITS = 18  # any integer literal of at most this many digits fits in int64

# Character classes, then the states of a finite automaton over a value's characters.
_END, _DIGIT, _ZERO, _SIGN, _DOT, _EXP, _SPACE, _OTHER = range(8)
_CLASSES = np.full(129, _OTHER, np.int8)  # code points above 127 map to the last entry
_CLASSES[0] = _END  # NumPy pads shorter strings with NUL
_CLASSES[[ord(c) for c in "123456789"]] = _DIGIT
_CLASSES[ord("0")] = _ZERO
_CLASSES[[ord("+"), ord("-")]] = _SIGN
_CLASSES[ord(".")] = _DOT
_CLASSES[[ord("e"), ord("E")]] = _EXP
_CLASSES[[ord(" "), ord("\t")]] = _SPACE

_STATES = (
    "start",
    "signed",
    "zero",  # a first digit 0: "0" or "0.5", or a leading zero when more digits follow
    "integer",
    "point",  # "1."
    "point_first",  # "." or "-."
    "fraction",
    "e",
    "e_sign",
    "exponent",
    "integer_space",
    "float_space",
    "text",
    "is_integer",
    "is_float",
)
# "integer" and what can follow it, once more for numbers whose integer part has a leading zero
_NUMBER_STATES = _STATES[3:12] + _STATES[13:]
_ALL_STATES = _STATES + tuple(f"{name}_lz" for name in _NUMBER_STATES)
_S = {name: index for index, name in enumerate(_ALL_STATES)}
_FINAL = {_S[name] for name in ("text", "is_integer", "is_float", "is_integer_lz", "is_float_lz")}


def _transitions() -> np.ndarray:
    """``table[state * 8 + character class]``: the next state."""
    table = np.full((len(_ALL_STATES), 8), _S["text"], np.uint8)

    def go(state: str, classes: tuple[int, ...], to: str, lz: bool = True) -> None:
        table[_S[state], list(classes)] = _S[to]
        if lz and state in _NUMBER_STATES:
            table[_S[state + "_lz"], list(classes)] = _S[to + "_lz" if to in _NUMBER_STATES else to]

    digits = (_DIGIT, _ZERO)
    go("start", (_SPACE,), "start")
    go("start", (_SIGN,), "signed")
    for state in ("start", "signed"):
        go(state, (_DIGIT,), "integer")
        go(state, (_ZERO,), "zero")
        go(state, (_DOT,), "point_first")
    go("zero", digits, "integer_lz")
    go("zero", (_DOT,), "point")
    go("zero", (_EXP,), "e")
    go("zero", (_SPACE,), "integer_space")
    go("zero", (_END,), "is_integer")
    go("integer", digits, "integer")
    go("integer", (_DOT,), "point")
    go("point_first", digits, "fraction")
    for state in ("point", "fraction"):
        go(state, digits, "fraction")
    for state in ("integer", "point", "fraction"):
        go(state, (_EXP,), "e")
    go("e", (_SIGN,), "e_sign")
    for state in ("e", "e_sign", "exponent"):
        go(state, digits, "exponent")
    for state in ("integer", "integer_space"):
        go(state, (_SPACE,), "integer_space")
        go(state, (_END,), "is_integer")
    for state in ("point", "fraction", "exponent", "float_space"):
        go(state, (_SPACE,), "float_space")
        go(state, (_END,), "is_float")
    for state in _FINAL:
        table[state, :] = state
    return table.reshape(-1)


_TRANSITIONS = _transitions()

MISSING, INTEGER, FLOAT, TEXT = range(4)
_KIND_OF_STATE = np.full(len(_ALL_STATES), TEXT, np.int8)
_KIND_OF_STATE[[_S["is_integer"], _S["is_integer_lz"]]] = INTEGER
_KIND_OF_STATE[[_S["is_float"], _S["is_float_lz"]]] = FLOAT
_LEADING_ZERO = np.zeros(len(_ALL_STATES), bool)
_LEADING_ZERO[[_S["is_integer_lz"], _S["is_float_lz"]]] = True
_IS_FINAL = np.zeros(len(_ALL_STATES), bool)
_IS_FINAL[list(_FINAL)] = True


def classify(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kind of each value of a NumPy unicode array (MISSING, INTEGER, FLOAT or TEXT), and
    whether it is a number whose integer part has a leading zero (``007``, ``-01.5``)."""
    count = len(values)
    if not count:
        return np.zeros(0, np.int8), np.zeros(0, bool)
    codes = np.ascontiguousarray(values).view(np.uint32).reshape(count, -1)
    state = np.zeros(count, np.uint8)
    for position in range(codes.shape[1]):
        classes = _CLASSES[np.minimum(codes[:, position], 128)]
        state = _TRANSITIONS[state.astype(np.intp) * 8 + classes]
        if _IS_FINAL[state].all():
            break
    state = _TRANSITIONS[state.astype(np.intp) * 8 + _END]
    kinds = _KIND_OF_STATE[state]
    for missing in MISSING_TEXT:
        kinds[values == missing] = MISSING
    return kinds, _LEADING_ZERO[state]


@dataclasses.dataclass
class TextColumnCounts:
    """What a column's values are, counted over blocks of rows (mergeable across parts)."""

    present: int = 0
    missing: int = 0
    integers: int = 0
    floats: int = 0
    leading_zeros: int = 0
    beyond_int64: int = 0
    first_text: tuple[int, str] | None = None  # (line, value) of the first text value
    first_leading_zero: tuple[int, str] | None = None
    first_beyond_int64: tuple[int, str] | None = None

    def add(self, values: np.ndarray, lines: np.ndarray) -> None:
        kinds, zeros = classify(values)
        counts = np.bincount(kinds, minlength=4)
        self.missing += int(counts[MISSING])
        self.present += len(values) - int(counts[MISSING])
        self.integers += int(counts[INTEGER])
        self.floats += int(counts[FLOAT])
        if counts[TEXT] and self.first_text is None:
            at = int(np.argmax(kinds == TEXT))
            self.first_text = (int(lines[at]), str(values[at]))
        if zeros.any():
            self.leading_zeros += int(zeros.sum())
            if self.first_leading_zero is None:
                at = int(np.argmax(zeros))
                self.first_leading_zero = (int(lines[at]), str(values[at]))
        long = kinds == INTEGER
        if values.dtype.itemsize // 4 > _INT64_DIGITS:
            long &= np.char.str_len(np.char.strip(values, " \t+-")) > _INT64_DIGITS
            for at in np.flatnonzero(long).tolist():
                if not -(2**63) <= int(values[at]) < 2**63:
                    self.beyond_int64 += 1
                    if self.first_beyond_int64 is None:
                        self.first_beyond_int64 = (int(lines[at]), str(values[at]))

    def merge(self, other: TextColumnCounts) -> None:
        for field in ("present", "missing", "integers", "floats", "leading_zeros", "beyond_int64"):
            setattr(self, field, getattr(self, field) + getattr(other, field))
        for field in ("first_text", "first_leading_zero", "first_beyond_int64"):
            if getattr(self, field) is None:
                setattr(self, field, getattr(other, field))


def decide(
    counts: TextColumnCounts, threshold: float, missing_allowed: bool, is_label: bool
) -> tuple[str, dict[str, Any] | None]:
    """The dtype of a text column from its counts, and a note (for stats.json and the log)
    when the decision is worth telling: text that looks numeric, numbers with text among them,
    integers stored as floats."""
    numbers = counts.integers + counts.floats
    if not numbers:
        return "string", None
    fraction = numbers / counts.present
    note: dict[str, Any] = {"values": counts.present, "numbers": numbers, "missing": counts.missing}

    def text(reason: str) -> tuple[str, dict[str, Any]]:
        return "string", {**note, "dtype": "string", "looks_numeric": True, "reason": reason}

    if fraction < threshold:
        if fraction <= LOOKS_NUMERIC:
            return "string", None
        line, value = counts.first_text  # type: ignore[misc]
        return text(
            f"{fraction:.1%} of its values are numbers, below numeric_threshold {threshold} "
            f"(first text value {value!r} at line {line})"
        )
    if counts.leading_zeros:
        line, value = counts.first_leading_zero  # type: ignore[misc]
        return text(
            f"numbers with leading zeros ({counts.leading_zeros}, first {value!r} at line "
            f"{line}) are codes, kept as text so they stay exact"
        )
    fitting = numbers - (0 if counts.floats else counts.beyond_int64)
    if fitting / counts.present < threshold:
        line, value = counts.first_beyond_int64  # type: ignore[misc]
        return text(
            f"integers beyond int64 ({counts.beyond_int64}, first {value!r} at line {line}) "
            "are identifiers, kept as text"
        )
    dtype = "float32" if counts.floats else "int64"
    reasons = []
    if dtype == "int64" and counts.missing and missing_allowed and not is_label:
        dtype, fitting = "float32", numbers
        reasons.append("integers with missing values: float32, so missing values are NaN")
    if fitting < counts.present:
        line, value = min(
            found for found in (counts.first_text, counts.first_beyond_int64) if found is not None
        )
        reasons.append(
            f"{counts.present - fitting} of its {counts.present} values are not "
            f"{'numbers' if dtype == 'float32' else 'int64 integers'} (first {value!r} at line "
            f"{line}): bad rows"
        )
    if not reasons:
        return dtype, None
    return dtype, {**note, "dtype": dtype, "looks_numeric": False, "reason": "; ".join(reasons)}
