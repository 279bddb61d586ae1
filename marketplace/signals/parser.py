"""Signals in a need's own words: ``?intent`` (I want to get one of these), ``#topic`` (what it
is about) and ``@mention`` (who it is for). Pure text work, no database.

A signal is a sigil at the start of the text or after a space or an opening bracket or quote,
followed by tag characters: Unicode letters, combining marks, decimal digits and ``_`` (a
mention also takes ``-``, as provider handles do). So ``C#``, ``what?now``, ``a@b`` are not
signals. Nothing inside a URL (``scheme://...`` or ``www....``), an e-mail address or code
(`` `inline` `` or fenced with three backticks) counts.

Tags are normalised (``normalise``): NFKC, then case folding (``Kayak`` == ``kayak``,
``STRASSE`` == ``straße`` == ``strasse``), then accents are stripped from Latin, Greek and
Cyrillic letters (``?Café`` == ``?cafe``, ``#naïve`` == ``#naive``) -- only there: in scripts
such as Devanagari a combining mark is part of the letter, and stripping it would merge
different words. A tag is at most ``MAX_TAG`` characters once normalised; a longer one is not
a signal (it is not a word anyone will search or subscribe to).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

INTENT, TOPIC, MENTION = "intent", "topic", "mention"
KINDS = (INTENT, TOPIC, MENTION)
SIGILS = {"?": INTENT, "#": TOPIC, "@": MENTION}
SIGIL_OF = {kind: sigil for sigil, kind in SIGILS.items()}
MAX_TAG = 40

# Spans where nothing is a signal: fenced code, inline code, URLs, e-mail addresses.
_IGNORED = re.compile(
    r"```.*?(?:```|\Z)"
    r"|`[^`\n]*`"
    r"|(?:\b[a-z][a-z0-9+.\-]*://|\bwww\.)\S+"
    r"|[^\s@<>()\[\]{}\"',;:]+@[^\s@<>()\[\]{}\"',;:]+\.[^\s@<>()\[\]{}\"',;:]+",
    re.IGNORECASE | re.DOTALL,
)
_LATIN_GREEK_CYRILLIC = ("LATIN", "GREEK", "CYRILLIC")


def _tag_char(ch: str, kind: str) -> bool:
    if ch == "_" or (ch == "-" and kind == MENTION):
        return True
    return unicodedata.category(ch)[0] in "LM" or unicodedata.category(ch) == "Nd"


def _may_precede(ch: str) -> bool:
    """What may stand right before a sigil: a space, an opening bracket or quote."""
    return ch.isspace() or unicodedata.category(ch) in ("Ps", "Pi", "Pf") or ch in "\"'"


def _strip_accents(text: str) -> str:
    out: list[str] = []
    base_strippable = False
    for ch in unicodedata.normalize("NFD", text):
        if unicodedata.category(ch) == "Mn":
            if base_strippable:
                continue
        else:
            name = unicodedata.name(ch, "")
            base_strippable = name.startswith(_LATIN_GREEK_CYRILLIC)
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def normalise(tag: str) -> str:
    """The stored form of a tag (without its sigil): NFKC, case-folded, accents stripped from
    Latin, Greek and Cyrillic letters. Idempotent: normalise(normalise(t)) == normalise(t)."""
    text = tag
    for _ in range(4):  # case folding can un-normalise (and NFKC un-fold); settle in a few turns
        settled = _strip_accents(unicodedata.normalize("NFKC", unicodedata.normalize(
            "NFKC", text).casefold()))
        if settled == text:
            break
        text = settled
    return text


@dataclass
class Signals:
    """The tags of a text, each list in order of first appearance, without duplicates."""

    intents: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)

    def of(self, kind: str) -> list[str]:
        return {INTENT: self.intents, TOPIC: self.topics, MENTION: self.mentions}[kind]

    def pairs(self) -> list[tuple[str, str]]:
        """(kind, tag) of every signal, intents first, each kind in order."""
        return [(kind, tag) for kind in KINDS for tag in self.of(kind)]


def _blank_ignored(text: str) -> str:
    """The text with every ignored span replaced by spaces (positions are kept)."""
    return _IGNORED.sub(lambda m: " " * len(m.group(0)), text)


def parse(*texts: str) -> Signals:
    """The signals of ``texts`` (a need's title and description), read as one."""
    found = Signals()
    for raw in texts:
        text = _blank_ignored(unicodedata.normalize("NFKC", raw))
        i, n = 0, len(text)
        while i < n:
            kind = SIGILS.get(text[i])
            if kind is None or (i > 0 and not _may_precede(text[i - 1])):
                i += 1
                continue
            j = i + 1
            while j < n and _tag_char(text[j], kind):
                j += 1
            word = text[i + 1:j]
            if kind == MENTION:
                word = word.strip("-")
            # A tag starts with a letter or digit (a mark or "_" alone is not a word).
            if word and unicodedata.category(word[0])[0] in "LN":
                tag = normalise(word)
                if tag and len(tag) <= MAX_TAG and tag not in found.of(kind):
                    found.of(kind).append(tag)
            i = max(j, i + 1)
    return found


def parse_subscription(text: str) -> tuple[str, str] | None:
    """A subscription as typed, ``?kayak`` or ``#boats`` -> (kind, normalised tag); None when
    it is not exactly one intent or topic signal."""
    text = text.strip()
    found = parse(text)
    pairs = [(k, t) for k, t in found.pairs() if k != MENTION]
    if len(pairs) != 1 or len(found.pairs()) != 1 or not text or text[0] not in "?#":
        return None
    word = text[1:]
    if any(not _tag_char(ch, SIGILS[text[0]]) for ch in unicodedata.normalize("NFKC", word)):
        return None
    return pairs[0]


def spelled(kind: str, tag: str) -> str:
    """A tag as people write it: ``?kayak``, ``#boats``, ``@anna``."""
    return SIGIL_OF[kind] + tag


# The tag being typed: a sigil and tag characters at the very end of the text.
_TYPING = re.compile(r"(?:^|[\s(\[{\"'])([?#])([^\W]*)$")


def being_typed(text: str) -> tuple[str, str, int] | None:
    """The intent or topic tag at the very end of ``text`` -- (kind, its characters as typed,
    where its sigil stands) -- or None when the text does not end in one."""
    found = _TYPING.search(text)
    if found is None:
        return None
    return SIGILS[found.group(1)], found.group(2), found.start(1)
