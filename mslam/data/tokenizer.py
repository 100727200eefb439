"""Tokenizers: the character vocabulary of the text front end (mSLAM: 4096 characters over 101
languages) and a SentencePiece wrapper for subword targets (speech translation decoders).

The character vocabulary is a plain file, one symbol per line, line number = id:

    <blank> <pad> <unk> <mask> <s> </s>   (ids 0..5, always first)
    <space>                               (the space character)
    a b c ...                             (characters, most useful first)

Which characters make the cut: every language contributes the characters that cover
`coverage` of its own character mass (rarest dropped first), and the remaining budget goes to
characters by their weight under temperature sampling of languages, p_l ~ (n_l / N)^(1/T):
the same sampling that decides how often each language is seen in pre-training.
"""
from __future__ import annotations

import os
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping

from mslam.data.kaldi import DataDirError, atomic_write_text

SPECIALS = ("<blank>", "<pad>", "<unk>", "<mask>", "<s>", "</s>")
BLANK_ID, PAD_ID, UNK_ID, MASK_ID, BOS_ID, EOS_ID = range(len(SPECIALS))
SPACE_SYMBOL = "<space>"


def normalize_text(text: str, lowercase: bool = False) -> str:
    """NFKC, whitespace runs collapsed to one space (the one normalisation used everywhere)."""
    text = " ".join(unicodedata.normalize("NFKC", text).split())
    return text.lower() if lowercase else text


def temperature_weights(sizes: Mapping[str, int], temperature: float) -> dict[str, float]:
    """Sampling probability per language: (n_l / N)^(1/T), normalised. T=1: proportional; T->inf: uniform."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    total = sum(sizes.values())
    if total <= 0:
        raise ValueError("temperature_weights: all languages are empty")
    raw = {lang: (n / total) ** (1.0 / temperature) for lang, n in sizes.items() if n > 0}
    norm = sum(raw.values())
    return {lang: w / norm for lang, w in raw.items()}


def count_chars(counts: Counter, text: str, lowercase: bool = False) -> None:
    """Add a text's characters, as the vocabulary sees them (normalised, spaces left out), to `counts`."""
    counts.update(normalize_text(text, lowercase).replace(" ", ""))


class CharTokenizer:
    def __init__(self, symbols: Iterable[str], lowercase: bool = False):
        self.symbols = list(symbols)
        if tuple(self.symbols[:len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"character vocabulary must start with {' '.join(SPECIALS)}")
        if len(set(self.symbols)) != len(self.symbols):
            dup = next(s for s, n in Counter(self.symbols).items() if n > 1)
            raise ValueError(f"character vocabulary has '{dup}' twice")
        self.lowercase = lowercase
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.index[" "] = self.index.get(SPACE_SYMBOL, UNK_ID)

    def __len__(self) -> int:
        return len(self.symbols)

    @classmethod
    def build(cls, texts_by_lang: Mapping[str, Iterable[str]], *, max_size: int = 4096,
              coverage: float = 0.9995, temperature: float = 3.0, lowercase: bool = False) -> "CharTokenizer":
        counts: dict[str, Counter] = {}
        for lang, texts in texts_by_lang.items():
            c = counts.setdefault(lang, Counter())
            for t in texts:
                count_chars(c, t, lowercase)
        return cls.from_counts(counts, max_size=max_size, coverage=coverage, temperature=temperature,
                               lowercase=lowercase)

    @classmethod
    def from_counts(cls, counts: Mapping[str, Counter], *, max_size: int = 4096, coverage: float = 0.9995,
                    temperature: float = 3.0, lowercase: bool = False) -> "CharTokenizer":
        """The vocabulary of per-language character counts (`count_chars`): what `build` makes of the
        texts, without holding them (a corpus is counted as it streams by)."""
        budget = max_size - len(SPECIALS) - 1
        if budget <= 0:
            raise ValueError(f"max_size {max_size} leaves no room for characters")
        weights = temperature_weights({lang: sum(c.values()) for lang, c in counts.items()}, temperature)
        score: Counter = Counter()
        for lang, c in counts.items():
            total = sum(c.values())
            for ch, n in c.items():
                score[ch] += weights.get(lang, 0.0) * n / max(total, 1)
        # Each language's core set (the characters covering `coverage` of its text) first, taken
        # rank by rank across languages so a tight budget still serves every language; then the
        # rest by sampled frequency.
        cores = []
        for lang, c in counts.items():
            total, mass, core = sum(c.values()), 0, []
            for ch, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])):
                if mass >= coverage * total:
                    break
                core.append(ch)
                mass += n
            cores.append(core)
        chosen: dict[str, None] = {}
        for rank in range(max(map(len, cores), default=0)):
            for core in cores:
                if rank < len(core):
                    chosen.setdefault(core[rank])
        by_score = sorted(score, key=lambda ch: (-score[ch], ch))
        ordered = list(dict.fromkeys([*chosen, *by_score]))[:budget]
        return cls([*SPECIALS, SPACE_SYMBOL, *ordered], lowercase=lowercase)

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, "".join(s + "\n" for s in self.symbols))

    @classmethod
    def load(cls, path: str | os.PathLike, lowercase: bool = False) -> "CharTokenizer":
        path = Path(path)
        symbols = []
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8").rstrip("\n")
                except UnicodeDecodeError:
                    raise DataDirError(f"{path}:{lineno}: not valid UTF-8") from None
                if not line or line.strip() != line:
                    raise DataDirError(f"{path}:{lineno}: expected one symbol without spaces, got {line!r}")
                symbols.append(line)
        try:
            return cls(symbols, lowercase=lowercase)
        except ValueError as e:
            raise DataDirError(f"{path}: {e}") from None

    def encode(self, text: str, *, utt: str | None = None, strict: bool = False) -> list[int]:
        """Ids of the characters of `text` (normalised). Characters outside the vocabulary map to
        <unk>, or raise with `strict` (naming the utterance and the characters)."""
        text = normalize_text(text, self.lowercase)
        ids = [self.index.get(ch, UNK_ID) for ch in text]
        if strict and UNK_ID in ids:
            unknown = sorted({ch for ch in text if ch not in self.index})
            where = f"utterance '{utt}': " if utt else ""
            raise ValueError(f"{where}character(s) {unknown} not in the vocabulary of {len(self)} symbols")
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        out = []
        for i in ids:
            sym = self.symbols[i]
            if i < len(SPECIALS):
                if i == UNK_ID:
                    out.append("\u2047")  # visible placeholder for an unknown character
                continue
            out.append(" " if sym == SPACE_SYMBOL else sym)
        return "".join(out)


class SubwordTokenizer:
    """SentencePiece model for subword targets (e.g. English ST/MT decoder vocabularies)."""

    def __init__(self, model_path: str | os.PathLike):
        import sentencepiece as spm
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"SentencePiece model '{model_path}' not found")
        self.sp = spm.SentencePieceProcessor(model_file=str(self.model_path))

    @staticmethod
    def train(texts: Iterable[str], model_prefix: str | os.PathLike, *, vocab_size: int,
              model_type: str = "unigram", character_coverage: float = 1.0) -> "SubwordTokenizer":
        """Train on normalised sentences; writes <prefix>.model and <prefix>.vocab.
        Ids: 0 <pad>, 1 <unk>, 2 <s>, 3 </s>, matching decoder conventions."""
        import sentencepiece as spm
        sentences = [normalize_text(t) for t in texts]
        sentences = [s for s in sentences if s]
        if not sentences:
            raise ValueError("SentencePiece: no training sentences")
        prefix = Path(model_prefix)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences), model_prefix=str(prefix), vocab_size=vocab_size,
            model_type=model_type, character_coverage=character_coverage, pad_id=0, unk_id=1, bos_id=2,
            eos_id=3, hard_vocab_limit=False, minloglevel=2, num_threads=1)
        return SubwordTokenizer(f"{prefix}.model")

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(normalize_text(text))

    def decode(self, ids: Iterable[int]) -> str:
        return self.sp.decode([int(i) for i in ids])
