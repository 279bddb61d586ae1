"""Money is an integer amount of minor units plus an ISO 4217 code — never a float."""

from __future__ import annotations

import re

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
