"""Money as people read and type it: integer minor units in the reader's language.

`format_money(1250, "EUR", "de")` is `12,50 €`, in English `€12.50`; `¥1,250` has no
decimals. The language comes from the browser's Accept-Language (`locale_of`); the styles
below cover the languages splitgo's people write in, and English is the fallback.
`parse_money` reads an amount as typed ("12,50", "1,234.50", "12") into minor units, by
integer arithmetic only, refusing what is no amount with words that say what to type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from actors.payments.messages import exponent_of

MINUS = "\u2212"
NBSP = "\u00a0"
NARROW_NBSP = "\u202f"


@dataclass(frozen=True, slots=True)
class Style:
    """How one language writes amounts: separators and where the currency goes."""

    decimal: str
    group: str
    symbol_first: bool
    spaced: bool  # a space between the number and a symbol


ENGLISH = Style(".", ",", symbol_first=True, spaced=False)
_COMMA_AFTER = Style(",", ".", symbol_first=False, spaced=True)  # 1.234,50 €
_SPACE_AFTER = Style(",", NARROW_NBSP, symbol_first=False, spaced=True)  # 1 234,50 €
STYLES: dict[str, Style] = {
    "en": ENGLISH,
    "ja": ENGLISH,
    "zh": ENGLISH,
    "ko": ENGLISH,
    "he": ENGLISH,
    "de": _COMMA_AFTER,
    "es": _COMMA_AFTER,
    "it": _COMMA_AFTER,
    "pt": _COMMA_AFTER,
    "da": _COMMA_AFTER,
    "ro": _COMMA_AFTER,
    "fr": _SPACE_AFTER,
    "pl": _SPACE_AFTER,
    "cs": _SPACE_AFTER,
    "sk": _SPACE_AFTER,
    "ru": _SPACE_AFTER,
    "uk": _SPACE_AFTER,
    "sv": _SPACE_AFTER,
    "nb": _SPACE_AFTER,
    "no": _SPACE_AFTER,
    "fi": _SPACE_AFTER,
    "hu": _SPACE_AFTER,
    "bg": _SPACE_AFTER,
    "nl": Style(",", ".", symbol_first=True, spaced=True),  # € 1.234,50
    "tr": Style(",", ".", symbol_first=True, spaced=False),  # ₺1.234,50
}
# a currency's sign where it cannot be mistaken; the others are said by their code
SYMBOLS: dict[str, str] = {
    "EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩", "ILS": "₪",
    "UAH": "₴", "TRY": "₺", "BRL": "R$", "CAD": "CA$", "AUD": "A$", "NZD": "NZ$",
    "HKD": "HK$", "SGD": "S$", "MXN": "MX$", "CNY": "CN¥",
}  # fmt: skip

_LANGUAGE = re.compile(
    r"^\s*([A-Za-z]{1,8})(?:-[A-Za-z0-9]{1,8})*\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*$"
)


def locale_of(accept_language: str | None) -> str:
    """The best language of an Accept-Language header that has a style; else English."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        found = _LANGUAGE.match(part)
        if found is None:
            continue
        try:
            weight = float(found[2]) if found[2] else 1.0
        except ValueError:
            continue
        language = found[1].lower()
        if weight > 0 and language in STYLES:
            ranked.append((-weight, position, language))
    return min(ranked)[2] if ranked else "en"


def _grouped(whole: int, separator: str) -> str:
    digits = str(whole)
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return separator.join(parts)


def format_number(amount: int, currency: str, locale: str = "en") -> str:
    """The amount's digits in the language's style, with no sign and no currency."""
    style = STYLES.get(locale, ENGLISH)
    exponent = exponent_of(currency)
    whole, minor = divmod(abs(amount), 10**exponent)
    number = _grouped(whole, style.group)
    return f"{number}{style.decimal}{minor:0{exponent}d}" if exponent else number


def format_money(amount: int, currency: str, locale: str = "en") -> str:
    """Minor units as the reader writes money: `€12.50`, `12,50 €`, `CHF 3.00`;
    a negative amount starts with a minus sign (U+2212): `−¥1,250`."""  # noqa: RUF002
    style = STYLES.get(locale, ENGLISH)
    code = currency.upper()
    symbol = SYMBOLS.get(code, code)
    number = format_number(amount, code, locale)
    space = NBSP if style.spaced or symbol.isalpha() else ""
    text = f"{symbol}{space}{number}" if style.symbol_first else f"{number}{NBSP}{symbol}"
    return f"{MINUS}{text}" if amount < 0 else text


_TYPED = re.compile(r"^[0-9][0-9., \u00a0\u202f']*$")


def parse_money(text: str, currency: str, locale: str = "en") -> int:
    """An amount as typed ("12,50", "1.234,50", "1,234.50", "12") in minor units.

    With both separators the last one is the decimal one; with one, the language's
    decimal separator is decimal, the other one groups thousands. ValueError says what
    to type instead."""
    exponent = exponent_of(currency)
    example = format_number(1250 * 10 ** max(exponent - 2, 0), currency, locale)
    typed = text.strip().lstrip("+")
    if not _TYPED.match(typed):
        raise ValueError(f"Enter an amount such as {example}.")
    compact = re.sub(r"[ \u00a0\u202f']", "", typed)
    marks = [index for index, char in enumerate(compact) if char in ".,"]
    decimal_at: int | None = None
    if marks:
        last = compact[marks[-1]]
        other = "," if last == "." else "."
        style = STYLES.get(locale, ENGLISH)
        digits_after = len(compact) - marks[-1] - 1
        lone = compact.count(last) == 1 and digits_after != 3
        if other in compact or last == style.decimal or lone:
            decimal_at = marks[-1]
    whole_text = compact[:decimal_at] if decimal_at is not None else compact
    minor_text = compact[decimal_at + 1 :] if decimal_at is not None else ""
    whole_digits = whole_text.replace(".", "").replace(",", "")
    if not whole_digits.isdigit() or (minor_text and not minor_text.isdigit()):
        raise ValueError(f"Enter an amount such as {example}.")
    if len(minor_text) > exponent:
        if exponent == 0:
            raise ValueError(f"{currency.upper()} has no decimals: enter a whole amount.")
        raise ValueError(f"Use at most {exponent} decimals, as in {example}.")
    scale: int = 10**exponent
    return int(whole_digits) * scale + int(minor_text.ljust(exponent, "0") or "0")
