"""Unified social credit code (统一社会信用代码, USCC) per GB 32100-2015.

18 characters from the 31-character alphabet ``0-9A-HJ-NPQRTUWXY`` (no I, O, Z, S, V);
the last is a check character: ``31 − (Σ value(cᵢ)·wᵢ mod 31)`` over the first 17 with
weights 3ⁱ mod 31, a result of 31 written as ``0``.
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_VALUE = {c: i for i, c in enumerate(ALPHABET)}

__all__ = ["uscc_check_char", "uscc_valid", "uscc_normalise"]


def uscc_normalise(code: str) -> str:
    """Strip spaces and upper-case (what people type)."""
    return "".join(code.split()).upper()


def uscc_check_char(first17: str) -> str:
    """The check character for the first 17 characters; ValueError on a foreign character."""
    if len(first17) != 17:
        raise ValueError("need 17 characters")
    try:
        total = sum(_VALUE[c] * w for c, w in zip(first17, WEIGHTS, strict=True))
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not in the USCC alphabet") from None
    return ALPHABET[(31 - total % 31) % 31]


def uscc_valid(code: str) -> bool:
    """True when ``code`` (already normalised) is 18 characters with a correct check character."""
    if len(code) != 18 or any(c not in _VALUE for c in code):
        return False
    return uscc_check_char(code[:17]) == code[17]
