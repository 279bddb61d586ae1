"""Contact only on acceptance: the one rule that hides a customer's contact details in free text
from the providers they have not chosen yet.

Text is stored as typed and shown intact to its writer; what a provider reads of a customer's
words (a need's title and description, the customer's messages, a notification that quotes
them) goes through ``mask`` first, until that provider's offer is accepted. ``mask`` replaces
phone numbers (found by ``phonenumbers``, the port of Google's libphonenumber, at
``Leniency.POSSIBLE`` in each configured region, so a number in international form is found
whatever the region), e-mail addresses (also written "name at host dot com"), and the
customer's own known details (their full name becomes their first name; their address and
phone wherever they appear). Leniency is POSSIBLE, not VALID: a made-up or unassigned number is
still a way to reach someone, and a masked long number in a need costs less than a leaked one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import phonenumbers

PHONE_HIDDEN = "[phone hidden until you accept]"
EMAIL_HIDDEN = "[email hidden until you accept]"
ADDRESS_HIDDEN = "[address hidden until you accept]"
DEFAULT_REGIONS = ("US",)

_BRACKET_AT = r"\s*[\[({<]\s*at\s*[\])}>]\s*"
_BRACKET_DOT = r"\s*[\[({<]\s*dot\s*[\])}>]\s*"
_WORD_AT, _WORD_DOT = r"\s+at\s+", r"\s+dot\s+"
_LOCAL, _LABEL = r"[\w.+%-]{1,64}", r"[\w-]{1,63}"
_ANY_DOT = rf"(?:\.|{_BRACKET_DOT}|{_WORD_DOT})"
_SPELT_DOT = rf"(?:{_BRACKET_DOT}|{_WORD_DOT})"
_BRACKET_AT_ALONE = re.compile(_BRACKET_AT, re.IGNORECASE)
_MORE = rf"(?:{_ANY_DOT}{_LABEL})*"
# Plain; "(at)" with any dots; "@" or " at " with at least one spelt-out dot — " at " with
# plain dots alone is every "at noon. Then".
_EMAILS = [re.compile(pattern, re.IGNORECASE) for pattern in (
    rf"{_LOCAL}@{_LABEL}(?:\.{_LABEL})*\.[a-z]{{2,24}}\b",
    rf"{_LOCAL}{_BRACKET_AT}{_LABEL}(?:{_ANY_DOT}{_LABEL})+",
    rf"{_LOCAL}(?:@|{_WORD_AT}){_LABEL}{_MORE}{_SPELT_DOT}{_LABEL}{_MORE}",
)]


@dataclass(frozen=True)
class Known:
    """What is known about the writer: replaced wherever it appears, whatever the format."""

    full_name: str | None = None
    first_name: str | None = None
    address: str | None = None
    phone: str | None = None
    email: str | None = None


# No number written internationally has fewer digits than this, country code included (the
# shortest: Iran's 4-digit numbers after +98); tests pin it against the metadata.
MIN_PHONE_DIGITS = 6
_DIGIT = re.compile(r"\d")


@functools.lru_cache(maxsize=32)
def min_digits(regions: tuple[str, ...]) -> int:
    """The fewest digits a phone number ``PhoneNumberMatcher`` could find in these regions has:
    text with fewer skips the matcher, the costly part."""
    lengths = [MIN_PHONE_DIGITS]
    for region in regions:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if meta is not None:
            desc = meta.general_desc
            lengths += [n for n in (*desc.possible_length,
                                    *(desc.possible_length_local_only or ())) if n > 0]
    return min(lengths)


def _spans(text: str, regions: Sequence[str]) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    if _DIGIT.subn("", text)[1] < min_digits(tuple(regions)):
        regions = ()
    for region in regions:
        for match in phonenumbers.PhoneNumberMatcher(
                text, region, leniency=phonenumbers.Leniency.POSSIBLE, max_tries=1000):
            spans.append((match.start, match.end, PHONE_HIDDEN))
    lowered = text.lower()
    # Each pattern only where its telltale is (a pattern tried at every position costs).
    for pattern, telltale in zip(_EMAILS, ("@" in text, _BRACKET_AT_ALONE.search(text),
                                           "dot" in lowered), strict=True):
        if telltale:
            spans.extend((m.start(), m.end(), EMAIL_HIDDEN) for m in pattern.finditer(text))
    return spans


def _literal(text: str, needle: str | None, replacement: str) -> list[tuple[int, int, str]]:
    needle = (needle or "").strip()
    if len(needle) < 4:
        return []
    words = [re.escape(w) for w in needle.split()]
    pattern = re.compile(r"[\s,]+".join(words), re.IGNORECASE)
    return [(m.start(), m.end(), replacement) for m in pattern.finditer(text)]


def _digits_of(text: str, phone: str | None) -> list[tuple[int, int, str]]:
    """The known phone's national digits in any spacing: '5 5 5-0 1 2 3' is still the number."""
    digits = re.sub(r"\D", "", phone or "")[-7:]
    if len(digits) < 7:
        return []
    pattern = re.compile(r"\D{0,3}".join(digits))
    return [(m.start(), m.end(), PHONE_HIDDEN) for m in pattern.finditer(text)]


def mask(text: str, regions: Iterable[str] = DEFAULT_REGIONS, known: Known | None = None) -> str:
    """``text`` with phone numbers, e-mail addresses and ``known`` details replaced by words
    that say they are hidden until acceptance. Overlapping finds merge into the first."""
    if not text:
        return text
    spans = _spans(text, tuple(regions) or DEFAULT_REGIONS)
    if known is not None:
        spans += _literal(text, known.address, ADDRESS_HIDDEN)
        spans += _literal(text, known.email, EMAIL_HIDDEN)
        spans += _digits_of(text, known.phone)
        if known.full_name and known.first_name and known.full_name.strip() != known.first_name:
            spans += _literal(text, known.full_name, known.first_name)
    if not spans:
        return text
    out, at = [], 0
    for start, end, replacement in sorted(spans, key=lambda s: (s[0], -s[1])):
        if start < at:  # inside the previous replacement: extend it
            if end > at:
                at = end
            continue
        out.append(text[at:start])
        out.append(replacement)
        at = end
    out.append(text[at:])
    return "".join(out)


def regions_from(setting: str | Sequence[str] | None) -> tuple[str, ...]:
    """'US,GB' -> ('US', 'GB'); the regions whose national formats are looked for."""
    if setting is None:
        return DEFAULT_REGIONS
    items = setting.split(",") if isinstance(setting, str) else list(setting)
    found = tuple(r.strip().upper() for r in items if r.strip())
    return found or DEFAULT_REGIONS


def for_providers(text: str, person: object | None = None, address: str | None = None) -> str:
    """``text`` written by ``person`` (a customer; any object with ``name``, ``first_name``,
    ``email``, ``phone``) as a provider who was not chosen reads it: ``mask`` in the app's
    ``PHONE_REGIONS``, with what is known of the person and the need's ``address``."""
    from flask import current_app, has_app_context

    setting = current_app.config.get("PHONE_REGIONS") if has_app_context() else None
    regions = _regions(setting) if setting is None or isinstance(setting, str) \
        else regions_from(setting)
    return _masked(text, regions, getattr(person, "name", None),
                   getattr(person, "first_name", None), getattr(person, "email", None),
                   getattr(person, "phone", None), address)


# The same texts are read again and again (a feed page, a list of needs, a thread), and the
# phone matcher is the costly part of a view: remember the latest answers. ``mask`` is a pure
# function of its arguments; they are kept as they come (the ``Known`` is made only when an
# answer is not kept: a page asks for some 40).
@functools.lru_cache(maxsize=4096)
def _masked(text: str, regions: tuple[str, ...], full_name: str | None, first_name: str | None,
            email: str | None, phone: str | None, address: str | None) -> str:
    return mask(text, regions, Known(full_name=full_name, first_name=first_name, email=email,
                                     phone=phone, address=address))


_regions = functools.lru_cache(maxsize=64)(regions_from)  # a setting written as text
