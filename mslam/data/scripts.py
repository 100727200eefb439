"""The Unicode scripts each language is written in, and the characters of a text that fall outside them.

One table serves every corpus: language codes are taken as the corpora write them (mC4 `iw`, `zh-Latn`,
FLEURS `cmn_hans_cn`, Common Voice `zh-CN`, MINDS-14 `de-DE`) and looked up by their first part, except
that a `-Latn` suffix means Latin script. A character is outside a language's scripts unless its Unicode
Script property is one of them, or Common / Inherited (spaces, most punctuation, ASCII digits, combining
marks), or it is a digit or punctuation of any script (the allow-list).

Uses: mC4's sentence minimums are scaled by how much one character of the language's main script
carries (`min_chars_scale`); transcripts (`data_dir scripts`) and the texts of the character vocabulary
(`build_char_vocab --foreign`) are checked with `ScriptCheck`.
Script names are Unicode's, as the `regex` module (a dependency of sacrebleu) spells them.
"""
from __future__ import annotations

import unicodedata
from collections import Counter
from functools import lru_cache

import regex

# Scripts -> the languages written in them (base codes of mC4, FLEURS, VoxPopuli, CoVoST 2, MINDS-14 and
# the toy corpus). The first script of a language is its main one.
_LANGUAGES_BY_SCRIPTS = {
    ("Latin",): "af ast az bs ca ceb co cs cy da de en eo es et eu ff fi fil fr fy ga gd gl ha haw hmn hr ht "
                "hu id ig is it jv kam kea la lb lg ln lt luo lv mg mi ms mt nb nl nn no nso ny oc om pl pt ro "
                "sk sl sm sn so sq st su sv sw tl tr umb vi wo xh yo zu",
    ("Latin", "Arabic"): "ku",
    ("Latin", "Cyrillic"): "uz",
    ("Cyrillic",): "be bg kk ky mk mn ru tg uk",
    ("Cyrillic", "Latin"): "sr",
    ("Greek",): "el",
    ("Arabic",): "ar ckb fa ps sd ug ur",
    ("Hebrew",): "he iw yi",
    ("Armenian",): "hy",
    ("Georgian",): "ka",
    ("Devanagari",): "hi mr ne",
    ("Bengali",): "as bn",
    ("Gurmukhi",): "pa",
    ("Gujarati",): "gu",
    ("Oriya",): "or",
    ("Tamil",): "ta",
    ("Telugu",): "te",
    ("Kannada",): "kn",
    ("Malayalam",): "ml",
    ("Sinhala",): "si",
    ("Thai",): "th",
    ("Lao",): "lo",
    ("Khmer",): "km",
    ("Myanmar",): "my",
    ("Ethiopic",): "am",
    ("Han",): "cmn yue zh",
    ("Han", "Hiragana", "Katakana"): "ja",
    ("Hangul", "Han"): "ko",
}
LANGUAGE_SCRIPTS: dict[str, tuple[str, ...]] = {
    lang: scripts for scripts, langs in _LANGUAGES_BY_SCRIPTS.items() for lang in langs.split()}
ALWAYS_ALLOWED = ("Common", "Inherited")
KNOWN_SCRIPTS = tuple(dict.fromkeys(s for scripts in _LANGUAGES_BY_SCRIPTS for s in scripts)) + ALWAYS_ALLOWED

# How many characters of a script make as much text as one Latin-script character, roughly: a sentence
# minimum meant for alphabets with spaces (mC4's 20 characters) drops every Chinese sentence otherwise.
# Han carries a word or morpheme per character, kana and Hangul a syllable; Thai, Lao, Khmer and Myanmar
# write no spaces between words. Scripts not listed: 1.
MIN_CHARS_SCALE = {"Han": 0.25, "Hiragana": 0.3, "Katakana": 0.3, "Hangul": 0.4,
                   "Thai": 0.6, "Lao": 0.6, "Khmer": 0.6, "Myanmar": 0.6}


def scripts_of(lang: str) -> tuple[str, ...] | None:
    """The scripts a language code is written in (main one first); None for a code not in the table."""
    code = lang.strip().lower().replace("_", "-")
    if code.endswith("-latn"):
        return ("Latin",)
    return LANGUAGE_SCRIPTS.get(code.split("-", 1)[0])


def min_chars_scale(lang: str) -> float:
    """The factor a Latin-script minimum length is scaled by for this language (its main script's)."""
    scripts = scripts_of(lang)
    return MIN_CHARS_SCALE.get(scripts[0], 1.0) if scripts else 1.0


@lru_cache(maxsize=None)
def _outside(scripts: tuple[str, ...]) -> regex.Pattern:
    allowed = "".join(rf"\p{{Script={s}}}" for s in scripts + ALWAYS_ALLOWED)
    return regex.compile(rf"[^{allowed}\p{{N}}\p{{P}}\s]")


def foreign_characters(text: str, lang: str) -> str:
    """The distinct characters of `text` outside the scripts of `lang`, in order of appearance
    ('' for a language not in the table: nothing to check against)."""
    scripts = scripts_of(lang)
    if scripts is None:
        return ""
    return "".join(dict.fromkeys(_outside(scripts).findall(text)))


@lru_cache(maxsize=4096)
def script_name(char: str) -> str:
    """The Unicode script of a character, among the table's scripts ('other' for the rest)."""
    for script in KNOWN_SCRIPTS:
        if regex.fullmatch(rf"\p{{Script={script}}}", char):
            return script
    return "other"


def describe(chars: str) -> str:
    """`'а' (U+0430 CYRILLIC SMALL LETTER A, Cyrillic)`, comma-separated: what a report shows of each."""
    return ", ".join(f"'{c}' (U+{ord(c):04X} {unicodedata.name(c, '?')}, {script_name(c)})" for c in chars)


class ScriptCheck:
    """Texts checked one by one against their language's scripts, with what a report needs: per language
    the texts checked and those with foreign characters (and which characters, in how many texts),
    empty texts, languages the table lacks, and the first few offenders by where they are."""

    EXAMPLES = 20

    def __init__(self) -> None:
        self.checked: Counter[str] = Counter()
        self.foreign: Counter[str] = Counter()
        self.chars: dict[str, Counter[str]] = {}
        self.empty: list[str] = []
        self.unchecked: Counter[str] = Counter()
        self.examples: list[str] = []

    def check(self, where: str, lang: str, text: str) -> bool:
        """Whether a text is usable: not empty and without characters outside the scripts of `lang`."""
        if not text.strip():
            self.empty.append(where)
            return False
        self.checked[lang] += 1
        if scripts_of(lang) is None:
            self.unchecked[lang] += 1
            return True
        chars = foreign_characters(text, lang)
        if not chars:
            return True
        self.foreign[lang] += 1
        self.chars.setdefault(lang, Counter()).update(chars)
        if len(self.examples) < self.EXAMPLES:
            self.examples.append(f"{where} ({lang}): {describe(chars)}")
        return False

    @property
    def problems(self) -> int:
        return sum(self.foreign.values()) + len(self.empty)

    def report(self) -> list[str]:
        """One line per language with foreign characters, then examples, empty texts and unchecked languages."""
        lines = []
        for lang, n in self.foreign.items():
            common = ", ".join(f"{describe(c)} in {k}" for c, k in self.chars[lang].most_common(5))
            lines.append(f"{lang}: {n} of {self.checked[lang]} texts have characters outside "
                         f"{'/'.join(scripts_of(lang))}: {common}")
        lines += [f"  e.g. {example}" for example in self.examples]
        if self.empty:
            lines.append(f"{len(self.empty)} empty text(s), e.g. {', '.join(self.empty[:3])}")
        if self.unchecked:
            lines.append(f"not checked (no script table for the language): {', '.join(sorted(self.unchecked))}")
        return lines
