"""Which legacy single-byte code page a file was written in, by which one reads its letters as words of a language.

charset-normalizer (functions/logic/csv_input.py asks it first) has no answer, or a wrong one, for short files: a name
list of a few rows holds a handful of non-ASCII bytes. Those few bytes still say a lot: in cp1250 `0xB3` is `ł`, one
letter in 55 of Polish text, while cp1252 reads it as `³`, a superscript three in the middle of a word.

So each candidate page decodes the text, and every non-ASCII character is scored as the log of how often it occurs in
the languages written in that page (letter frequencies of written text, rounded), with penalties for what no
language's words contain: a symbol between two letters, a capital right after a small letter, a byte the page does
not define. Pages are compared two at a time on the bytes they read differently only (a byte both read as `é`
says nothing about which of them it is); cp1252 holds unless another page reads the text clearly better.
"""

from __future__ import annotations

import codecs
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from charset_normalizer.constant import FREQUENCIES

# Percent of the letters of running text (Wikipedia's letter-frequency tables and national corpora, rounded): only
# the letters outside ASCII for Latin scripts, every letter for the others.
_POLISH = {"ą": 0.99, "ć": 0.40, "ę": 1.11, "ł": 1.82, "ń": 0.20, "ó": 0.85, "ś": 0.66, "ź": 0.06, "ż": 0.83}
_CZECH = {
    "á": 0.87, "č": 0.46, "ď": 0.02, "é": 0.63, "ě": 1.22, "í": 1.64, "ň": 0.07, "ó": 0.02, "ř": 0.38, "š": 0.69,
    "ť": 0.04, "ú": 0.19, "ů": 0.20, "ý": 0.99, "ž": 0.72,
}  # fmt: skip
_SLOVAK = {
    "á": 2.0, "ä": 0.1, "č": 0.9, "ď": 0.1, "é": 0.7, "í": 1.5, "ĺ": 0.01, "ľ": 0.3, "ň": 0.1, "ó": 0.2, "ô": 0.2,
    "ŕ": 0.01, "š": 0.8, "ť": 0.3, "ú": 0.7, "ý": 1.3, "ž": 0.9,
}  # fmt: skip
_HUNGARIAN = {"á": 3.4, "é": 3.9, "í": 0.6, "ó": 1.0, "ö": 1.0, "ő": 0.9, "ú": 0.3, "ü": 0.6, "ű": 0.1}
_SOUTH_SLAVIC = {"č": 1.0, "ć": 0.5, "đ": 0.2, "š": 0.9, "ž": 0.7}
_ROMANIAN = {"ă": 2.5, "â": 0.8, "î": 1.0, "ş": 1.5, "ţ": 1.0}
_FRENCH = {
    "à": 0.49, "â": 0.05, "ç": 0.09, "é": 1.9, "è": 0.27, "ê": 0.22, "ë": 0.01, "î": 0.05, "ï": 0.01, "ô": 0.02,
    "ù": 0.06, "û": 0.06, "œ": 0.02, "ÿ": 0.001, "æ": 0.001,
}  # fmt: skip
_GERMAN = {"ä": 0.58, "ö": 0.44, "ü": 0.99, "ß": 0.31}
_SPANISH = {"á": 0.5, "é": 0.43, "í": 0.73, "ñ": 0.31, "ó": 0.83, "ú": 0.17, "ü": 0.02}
_PORTUGUESE = {
    "á": 0.5, "â": 0.56, "ã": 0.73, "à": 0.07, "ç": 0.53, "é": 0.34, "ê": 0.45, "í": 0.13, "ó": 0.3, "ô": 0.64,
    "õ": 0.04, "ú": 0.2,
}  # fmt: skip
_ITALIAN = {"à": 0.63, "è": 0.26, "é": 0.03, "ì": 0.03, "ò": 0.1, "ù": 0.17}
_NORDIC = {"å": 1.3, "ä": 1.8, "ö": 1.3, "æ": 0.9, "ø": 0.9, "é": 0.02, "š": 0.01, "ž": 0.01}
_ICELANDIC = {
    "á": 1.8, "ð": 4.4, "é": 0.65, "í": 1.57, "ó": 0.99, "ú": 0.6, "ý": 0.23, "þ": 1.45, "æ": 0.87, "ö": 0.78,
}  # fmt: skip
_CATALAN_DUTCH = {"à": 0.6, "ç": 0.1, "è": 0.4, "é": 0.6, "í": 0.6, "ï": 0.05, "ò": 0.2, "ó": 0.5, "ú": 0.1, "ë": 0.02}
_ALBANIAN = {"ë": 8.0, "ç": 0.8}
_TURKISH = {"ç": 1.2, "ğ": 1.1, "ı": 5.1, "ö": 0.8, "ş": 1.8, "ü": 1.9, "â": 0.02, "î": 0.01, "û": 0.01, "İ": 0.5}
_BALTIC = {
    "ą": 0.6, "č": 0.5, "ę": 0.2, "ė": 1.6, "į": 0.7, "š": 1.4, "ų": 0.6, "ū": 0.5, "ž": 0.8, "ā": 4.0, "ē": 1.7,
    "ģ": 0.1, "ī": 1.6, "ķ": 0.1, "ļ": 0.4, "ņ": 0.4, "ä": 1.0, "õ": 1.0, "ö": 0.3, "ü": 1.0,
}  # fmt: skip
_RUSSIAN = {
    "о": 10.97, "е": 8.45, "а": 8.01, "и": 7.35, "н": 6.70, "т": 6.26, "с": 5.47, "р": 4.73, "в": 4.54, "л": 4.40,
    "к": 3.49, "м": 3.21, "д": 2.98, "п": 2.81, "у": 2.62, "я": 2.01, "ы": 1.90, "ь": 1.74, "г": 1.70, "з": 1.65,
    "б": 1.59, "ч": 1.44, "й": 1.21, "х": 0.97, "ж": 0.94, "ш": 0.73, "ю": 0.64, "ц": 0.48, "щ": 0.36, "э": 0.32,
    "ф": 0.26, "ъ": 0.04, "ё": 0.04,
}  # fmt: skip
_UKRAINIAN = {
    "о": 9.4, "а": 8.3, "н": 6.8, "и": 6.1, "в": 5.4, "т": 5.5, "і": 5.0, "е": 4.9, "р": 4.8, "с": 4.3, "к": 3.8,
    "л": 3.7, "у": 3.4, "д": 3.3, "м": 3.1, "п": 2.9, "я": 2.4, "з": 2.3, "ь": 1.9, "б": 1.6, "г": 1.5, "ч": 1.4,
    "х": 1.2, "й": 1.0, "ж": 0.9, "ш": 0.8, "ю": 0.8, "ц": 0.6, "ї": 0.6, "є": 0.4, "щ": 0.4, "ф": 0.3, "ґ": 0.01,
}  # fmt: skip
_BULGARIAN = {**{k: v for k, v in _RUSSIAN.items() if k not in "ыэё"}, "ъ": 2.2}
_SERBIAN = {
    "а": 11.0, "и": 9.5, "о": 9.0, "е": 8.5, "н": 5.0, "р": 4.5, "с": 4.5, "т": 4.5, "ј": 4.5, "у": 4.0, "к": 3.5,
    "д": 3.5, "в": 3.5, "л": 3.0, "п": 2.8, "м": 3.0, "з": 1.7, "г": 1.6, "б": 1.5, "ч": 1.0, "ш": 0.8, "ц": 0.8,
    "ж": 0.6, "х": 0.4, "њ": 0.5, "љ": 0.4, "ћ": 0.8, "ђ": 0.2, "џ": 0.1, "ф": 0.2,
}  # fmt: skip
_GREEK = {
    "α": 12.0, "ο": 9.8, "ι": 7.8, "ε": 7.9, "τ": 8.0, "σ": 4.2, "ς": 3.0, "ν": 6.6, "η": 4.9, "υ": 4.0, "ρ": 4.4,
    "π": 4.0, "κ": 3.9, "μ": 3.3, "λ": 2.7, "ω": 1.8, "γ": 1.8, "δ": 1.8, "θ": 1.3, "χ": 1.1, "β": 0.6, "φ": 0.8,
    "ξ": 0.3, "ψ": 0.15, "ζ": 0.4, "ά": 1.8, "έ": 1.4, "ή": 1.0, "ί": 1.6, "ό": 1.5, "ύ": 0.8, "ώ": 0.5, "ϊ": 0.1,
    "ϋ": 0.02, "ΐ": 0.01, "ΰ": 0.01,
}  # fmt: skip
_HEBREW = {chr(c): 4.0 for c in range(0x05D0, 0x05EB)}
_ARABIC = {chr(c): 3.0 for c in range(0x0621, 0x064B)} | dict.fromkeys("پچژگکی", 1.0)


Language = dict[str, float]


def _language(percent: Mapping[str, float]) -> Language:
    # A letter's weight is its share of all the letters of the language's text: `ł` is one in 55 of Polish, `о` one in
    # 9 of Russian, so a text of all non-ASCII letters reads as Cyrillic rather than as a run of rare Latin accents.
    return {letter: share / 100 for letter, share in percent.items()}


# The pages scored, cp1252 first (the most common: it holds unless another reads the text clearly better), and the
# languages spreadsheets write in each, by the name charset-normalizer's letter-frequency ranks give the language
# (its ASCII letters weigh too: `Kowalczyk` reads as Polish, `Muñoz` as Spanish; Icelandic borrows Danish ranks,
# Albanian English ones, for want of their own). East Asian pages and cp1258 are left to charset-normalizer.
_TABLES: dict[str, tuple[tuple[str, Mapping[str, float]], ...]] = {
    "cp1252": (
        ("French", _FRENCH), ("German", _GERMAN), ("Spanish", _SPANISH), ("Portuguese", _PORTUGUESE),
        ("Italian", _ITALIAN), ("Swedish", _NORDIC), ("Danish", _ICELANDIC), ("Dutch", _CATALAN_DUTCH),
        ("English", _ALBANIAN),
    ),
    "cp1250": (
        ("Polish", _POLISH), ("Czech", _CZECH), ("Slovak", _SLOVAK), ("Hungarian", _HUNGARIAN),
        ("Croatian", _SOUTH_SLAVIC), ("Romanian", _ROMANIAN),
    ),
    "cp1251": (("Russian", _RUSSIAN), ("Ukrainian", _UKRAINIAN), ("Bulgarian", _BULGARIAN), ("Serbian", _SERBIAN)),
    "cp1253": (("Greek", _GREEK),),
    "cp1254": (("Turkish", _TURKISH),),
    "cp1257": (("Lithuanian", _BALTIC),),
    "koi8_r": (("Russian", _RUSSIAN), ("Bulgarian", _BULGARIAN)),
    "koi8_u": (("Russian", _RUSSIAN), ("Ukrainian", _UKRAINIAN), ("Bulgarian", _BULGARIAN)),
    "cp1255": (("Hebrew", _HEBREW),),
    "cp1256": (("Arabic", _ARABIC),),
}  # fmt: skip
PAGES: dict[str, tuple[Language, ...]] = {
    page: tuple(_language(table) for _, table in tables) for page, tables in _TABLES.items()
}


def _ascii_weights(name: str) -> Language:
    # charset-normalizer ranks each language's most frequent letters; a rank becomes a weight by Zipf's law. A
    # language written in another script scores ASCII text (addresses, English headers) as English.
    ranked = [c for c in FREQUENCIES.get(name, []) if "a" <= c <= "z"] or list(FREQUENCIES["English"])
    harmonic = sum(1 / (rank + 1) for rank in range(len(ranked)))
    return {letter: 1 / ((rank + 1) * harmonic) for rank, letter in enumerate(ranked)}


_ASCII: dict[str, tuple[Language, ...]] = {
    page: tuple(_ascii_weights(name) for name, _ in tables) for page, tables in _TABLES.items()
}
# A letter missing from a language's ranks (`q` in Polish); and how much the ASCII letters weigh against the others.
_RARE_ASCII = math.log(0.002)
ASCII_WEIGHT = 0.5


# A name from another language of the same page (`René Müller`: French and German) is common, but a text of one
# language is still likelier than a mix: a borrowed letter weighs this share of its weight in its own language.
_BORROWED = 0.05


def _unions() -> dict[str, Language]:
    merged: dict[str, Language] = {}
    for page, languages in PAGES.items():
        union: Language = {}
        for language in languages:
            for letter, weight in language.items():
                union[letter] = max(union.get(letter, 0.0), weight * _BORROWED)
        merged[page] = union
    return merged


_PAGE_LETTERS = _unions()

# Log-probabilities of what no language's words hold (letters are scored by their frequency, 0.0001 to 0.12).
_FOREIGN_LETTER = math.log(1e-5)  # a letter, but of no language written in this page
_SYMBOL = math.log(1e-3)  # a sign between words: `€`, `°`, `«`
_SYMBOL_IN_WORD = math.log(1e-7)  # a sign between two letters: `Żółć` read as `¯ó³æ`
# A capital right after a small letter (`пРИВЕТ`: cp1251 read as KOI8-R), or between a capital and a small letter.
_CAPITAL_IN_WORD = math.log(1e-2)
_MIXED_SCRIPTS = math.log(1e-6)  # Latin and Cyrillic letters in one word: `Łukasz` read as cp1251 `Ѓukasz`
_MARK = math.log(1e-2)  # a combining mark (Hebrew and Arabic vowel points)
_UNDEFINED = math.log(1e-9)  # a byte the page does not define, or a control character
# How much better (in nats, summed over the bytes read differently) a page must read the text to replace another.
MARGIN = 3.0
# A mean score above this is text of a language, read in its page (real text measured -2.7 to -7.0, CJK text read
# byte by byte -4.9 to -9.9, on the samples of tests/unit/test_csv_encodings.py).
CONFIDENT = -4.5
# Enough text to decide on: lines holding non-ASCII bytes, up to this many bytes.
SAMPLE_BYTES = 8 * 1024
# Words: an email address, a URL or a code says nothing about the language of the names beside it.
_WORDS = re.compile(rb"(?<![^\s,;|\t])[a-z\x80-\xff]+(?![^\s,;|\t])")
_NON_ASCII = re.compile(rb"[^\n]*[\x80-\xff][^\n]*\n?")


def _sample(head: bytes) -> bytes:
    """The lines of `head` that hold non-ASCII bytes, up to SAMPLE_BYTES: only those can tell the pages apart."""
    taken: list[bytes] = []
    size = 0
    for match in _NON_ASCII.finditer(head):
        taken.append(match.group())
        size += len(match.group())
        if size >= SAMPLE_BYTES:
            break
    return b"".join(taken)[:SAMPLE_BYTES]


def _letter_key(char: str) -> str:
    lower = char.lower()
    return lower if len(lower) == 1 else char  # `İ`.lower() is two code points


def _script(char: str) -> str:
    return unicodedata.name(char, "").split(" ")[0]


def _penalty(char: str, before: str, after: str) -> float:
    """What the character's place says, whatever the language: signs between letters, capitals after small letters,
    letters of two scripts in one word, bytes the page does not define."""
    if char == "\ufffd":
        return _UNDEFINED
    category = unicodedata.category(char)
    if category.startswith(("L", "M")):
        penalty = _MARK if category.startswith("M") else 0.0
        # `McDonald` is rare, `ΝΊκος` read as `НЯкпт` (Greek accented vowels are cp1251 capitals) rarer still.
        if char.isupper() and before.isalpha() and (before.islower() or (before.isupper() and after.islower())):
            penalty += _CAPITAL_IN_WORD
        script = _script(char)
        if any(n.isalpha() and _script(n) != script for n in (before, after)):
            penalty += _MIXED_SCRIPTS
        return penalty
    if category.startswith("C"):
        return _UNDEFINED
    return _SYMBOL_IN_WORD if before.isalpha() and after.isalpha() else _SYMBOL


def _letter_score(char: str, language: Language, page_letters: Language) -> float:
    if not char.isalpha():
        return 0.0
    key = _letter_key(char)
    weight = language.get(key) or page_letters.get(key)
    return math.log(weight) if weight else _FOREIGN_LETTER


def _ascii_score(counts: Counter[str], weights: Language) -> float:
    return ASCII_WEIGHT * sum(n * (math.log(weights[c]) if c in weights else _RARE_ASCII) for c, n in counts.items())


def _read(sample: bytes, page: str) -> tuple[str, list[float], float, set[int]]:
    """The sample as `page` reads it: its text, the score of each character and of its ASCII letters, in the language
    of the page that reads it best (0 for an ASCII character: the same in every page), and where it reads a letter
    that none of its languages writes."""
    text = codecs.decode(sample, page, errors="replace")
    positions = [i for i, byte in enumerate(sample) if byte >= 0x80]
    penalties = {
        i: _penalty(text[i], text[i - 1] if i else " ", text[i + 1] if i + 1 < len(text) else " ") for i in positions
    }
    counts = Counter(text[i] for i in positions)
    ascii_letters = Counter(c for word in _WORDS.findall(sample.lower()) for c in word.decode("latin-1") if c <= "z")
    letters = _PAGE_LETTERS[page]
    fits = [
        (sum(n * _letter_score(char, lang, letters) for char, n in counts.items()) + _ascii_score(ascii_letters, w), k)
        for k, (lang, w) in enumerate(zip(PAGES[page], _ASCII[page], strict=True))
    ]
    best = max(fits)[1]
    language = PAGES[page][best]
    scores = [0.0] * len(text)
    for i in positions:
        scores[i] = penalties[i] + _letter_score(text[i], language, letters)
    foreign = {i for i in positions if text[i].isalpha() and _letter_key(text[i]) not in letters}
    return text, scores, _ascii_score(ascii_letters, _ASCII[page][best]), foreign


@dataclass(frozen=True)
class Reading:
    """The page that reads a text best, and how well: the mean score of its non-ASCII characters (about -2 to -6 for
    text in its own page; far lower for bytes of another kind of encoding, such as Shift-JIS read byte by byte)."""

    page: str
    mean: float


def best_page(head: bytes) -> Reading | None:
    """The single-byte page whose reading of `head` looks most like text of a language; None when no byte tells."""
    sample = _sample(head)
    if not sample:
        return None
    readings = {page: _read(sample, page) for page in PAGES}
    champion = "cp1252"
    for challenger in PAGES:
        if challenger == champion:
            continue
        mine, theirs = readings[champion], readings[challenger]
        # Where both read the same letter, and both write it, the byte says nothing about which page it is (`é` is
        # Hungarian as much as French); a letter one of them does not write (`ß` in cp1250) still counts.
        differing = [i for i in range(len(sample)) if mine[0][i] != theirs[0][i] or (i in mine[3]) != (i in theirs[3])]
        advantage = sum(theirs[1][i] - mine[1][i] for i in differing) + theirs[2] - mine[2]
        if differing and advantage > MARGIN:
            champion = challenger
    non_ascii = sum(1 for byte in sample if byte >= 0x80)
    return Reading(champion, sum(readings[champion][1]) / non_ascii)
