"""Money is an integer amount of minor units plus an ISO 4217 code — never a float.

``format_money``/``parse_major`` are the locale-free forms (API messages, logs);
``format_amount``/``parse_amount`` are what a person reads and types, in their locale (Babel's
CLDR data: "$1,250.00" in en_US, "1.250,00 €" in de_DE)."""

from __future__ import annotations

import copy
import functools
import re
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.numbers import (
    NumberFormatError,
    get_currency_symbol,
    get_territory_currencies,
    parse_decimal,
    parse_pattern,
)

# ISO 4217 active codes with their number of minor-unit digits (most are 2).
_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB "
    "EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS "
    "KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN "
    "MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD "
    "SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS "
    "UAH USD USN UYU UZS VED VES WST XCD YER ZAR ZMW ZWG"
)

MINOR_UNITS: dict[str, int] = {
    **{code: 2 for code in _TWO.split()},
    **{code: 0 for code in _ZERO.split()},
    **{code: 3 for code in _THREE.split()},
    **{code: 4 for code in _FOUR.split()},
}
CURRENCIES = frozenset(MINOR_UNITS)
MAX_AMOUNT = 10**12  # minor units; keeps sums far inside a signed 64-bit integer


def format_money(amount: int, currency: str) -> str:
    """``40000, "USD"`` -> ``"400.00 USD"``; exact, by integer arithmetic."""
    digits = MINOR_UNITS.get(currency, 2)
    if digits == 0:
        return f"{amount} {currency}"
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**digits)
    return f"{sign}{whole}.{frac:0{digits}d} {currency}"


def parse_major(text: str, currency: str) -> int:
    """``"1,200.5"`` in USD -> ``120050``: what people type into a form, as minor units.

    Raises ValueError with a message fit for the form when the text is not an amount.
    """
    digits = MINOR_UNITS.get(currency, 2)
    match = re.fullmatch(r"(\d*)(?:\.(\d*))?", text.strip().replace(",", "").replace(" ", ""))
    if match is None or not (match.group(1) or match.group(2)):
        raise ValueError("Enter an amount like 400 or 400.50.")
    whole, frac = match.group(1), match.group(2) or ""
    if len(whole.lstrip("0")) > len(str(MAX_AMOUNT)):  # before int(): 5,000 digits is an error
        raise ValueError("That amount is too large.")
    if len(frac) > digits:
        raise ValueError(f"{currency} has {digits} decimal places at most.")
    amount = int(whole or "0") * 10**digits + int((frac or "0").ljust(digits, "0") or "0")
    if amount > MAX_AMOUNT:
        raise ValueError("That amount is too large.")
    return amount


def major_text(amount: int, currency: str) -> str:
    """The inverse of ``parse_major`` for pre-filling forms: ``120050`` -> ``"1200.50"``."""
    return format_money(amount, currency).rsplit(" ", 1)[0]


DEFAULT_LOCALE = "en_US"
# The picker's first group: the currencies most people here pay in; then all the others.
COMMON_CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "NZD", "CHF", "INR", "JPY", "MXN",
                     "BRL", "ZAR")
_MAX_TYPED = 40  # characters: longer is not an amount anybody types


@functools.lru_cache(maxsize=256)
def locale_of(tag: str | None) -> Locale:
    """A locale from a BCP 47 tag ("de-DE") or a Babel name ("de_DE"); en_US when unknown."""
    if tag:
        try:
            return Locale.parse(tag.replace("-", "_"))
        except (ValueError, TypeError, UnknownLocaleError):
            pass
    return Locale.parse(DEFAULT_LOCALE)


def currency_of_locale(tag: str | None) -> str:
    """The currency people in the locale's territory pay in (de_DE -> EUR); USD otherwise."""
    locale = locale_of(tag)
    if locale.territory:
        for code in get_territory_currencies(locale.territory):
            if code in CURRENCIES:
                return code
    return "USD"


def currencies_in_order(first: str | None = None) -> tuple[list[str], list[str]]:
    """The picker's two groups: the common currencies (``first`` at their head) and the rest."""
    common = [c for c in COMMON_CURRENCIES if c != first]
    if first in CURRENCIES:
        common.insert(0, first)
    return common, sorted(CURRENCIES - set(common))


@functools.lru_cache(maxsize=4096)  # pages show the same few amounts again and again
def format_amount(amount: int, currency: str, locale: str | None = None) -> str:
    """``125000, "USD"`` -> ``"$1,250.00"`` (en_US), ``"1.250,00 €"`` for EUR in de_DE; exact
    (a Decimal of the minor units) and with ISO 4217's number of decimals."""
    loc = locale_of(locale)
    digits = MINOR_UNITS.get(currency, 2)
    pattern = copy.copy(parse_pattern(loc.currency_formats["standard"]))
    pattern.frac_prec = (digits, digits)
    return pattern.apply(Decimal(amount).scaleb(-digits), loc, currency=currency,
                         currency_digits=False)


def _symbols(currency: str, loc: Locale) -> list[str]:
    found = {currency, get_currency_symbol(currency, locale=loc),
             get_currency_symbol(currency, locale="en_US")}
    if currency.endswith("D"):  # "$" for any dollar, as people type it
        found.add("$")
    return sorted(found, key=len, reverse=True)


def parse_amount(text: str, currency: str, locale: str | None = None) -> int:
    """What people type into an amount box, in their locale, as minor units: "$400", "400",
    "1,250.50" (en), "1.250,50 €" (de); a dot-decimal "12.50" is also taken where the locale
    writes "12,50". ValueError carries a message for the person."""
    loc = locale_of(locale)
    example = (f"Enter an amount like {format_amount(40000, currency, locale)} or "
               f"{format_amount(125050, currency, locale)}.")
    cleaned = (text or "").strip()
    if not cleaned:
        raise ValueError("Enter an amount, for example " + format_amount(40000, currency, locale)
                         + ".")
    if len(cleaned) > _MAX_TYPED:
        raise ValueError("That amount is too large.")
    for symbol in _symbols(currency, loc):
        cleaned = cleaned.replace(symbol, " ")
    cleaned = re.sub(r"[\s\u00a0\u202f]+", " ", cleaned).strip()
    if cleaned.startswith("-"):
        raise ValueError("Enter an amount above zero.")
    if not re.fullmatch(r"[0-9][0-9.,' ]*|[.,][0-9]+", cleaned, re.ASCII):
        raise ValueError(example)
    value = _decimal(cleaned, loc)
    if value is None:
        raise ValueError(example)
    digits = MINOR_UNITS.get(currency, 2)
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > digits and value != value.to_integral():
        raise ValueError(f"{currency} has {digits} decimal places at most."
                         if digits else f"{currency} has no decimal places: enter a whole amount.")
    amount = int(value.scaleb(digits))
    if amount > MAX_AMOUNT:
        raise ValueError("That amount is too large.")
    return amount


def _decimal(text: str, loc: Locale) -> Decimal | None:
    """The number in ``text`` read the locale's way (strictly: "1,25" is not 125 in en), else
    as a plain dot-decimal with no grouping ("12.50"); None when neither reads it."""
    grouped = text.replace(" ", loc.number_symbols["latn"]["group"]) \
        if loc.number_symbols["latn"]["group"] in ("\u00a0", "\u202f") else text
    try:
        return parse_decimal(grouped, locale=loc, strict=True)
    except NumberFormatError:
        pass
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?|\.[0-9]+", text, re.ASCII):
        return Decimal(text)
    if re.fullmatch(r"[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?", text, re.ASCII):  # en grouping anywhere
        return Decimal(text.replace(",", ""))
    return None


@functools.lru_cache(maxsize=4096)  # as format_amount: a feed page pre-fills 25 boxes
def input_text(amount: int, currency: str, locale: str | None = None) -> str:
    """An amount as a form box pre-fills it, in the locale's digits without the symbol:
    ``125050`` -> ``"1,250.50"`` (en_US), ``"1.250,50"`` (de_DE); ``parse_amount`` reads it."""
    loc = locale_of(locale)
    digits = MINOR_UNITS.get(currency, 2)
    pattern = copy.copy(parse_pattern("#,##0"))
    pattern.frac_prec = (digits, digits)
    return pattern.apply(Decimal(amount).scaleb(-digits), loc)
