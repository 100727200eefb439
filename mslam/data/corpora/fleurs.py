"""FLEURS (Hugging Face `google/fleurs`, v2 files) as Kaldi data dirs for spoken language identification.

What the download stage fetches, relative to https://huggingface.co/datasets/google/fleurs/resolve/main:

    data/<lang>/audio/{train,dev,test}.tar.gz    <split>/<file_name> (16 kHz wav)
    data/<lang>/{train,dev,test}.tsv             7 TAB-separated columns, no header (TSV_COLUMNS)

`prepare` extracts each audio archive once into `data/<lang>/audio/<split>/` (a folder that already
exists there, e.g. from `tar xzf`, is used as is) and writes `<out>/{train,dev,test}` holding all
requested languages: wav.scp, text (the normalised `transcription`), utt2lang (the FLEURS code: the
LangID label), utt2num_samples, utt2spk/spk2utt.

Utterance ids are `<lang>_<file_name without .wav>`. FLEURS v2 has no speaker column (the speaker ids
of the early XTREME-S TSVs were dropped), so every recording is its own pseudo speaker: utt2spk maps
an utterance to its recording id. A file name listed more than once in a language (a recording
that appears in two rows) keeps every row; the repeats get ids `<id>-2`, `<id>-3`, ...

Each language is a shard (`--nj` at once, in processes) streamed into sorted files under <out>.parts/
and stamped when done, so a killed run redoes only the unfinished languages; the data dirs are a merge
of those files. Every archive belongs to one language, so a job array of `--part J/N` calls (each
extracting and reading its own languages) needs no work done before it; the call without --part merges.
"""
from __future__ import annotations

import logging
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from mslam.data.corpora import common
from mslam.data.corpora.common import (DOWNLOAD_STAGE, DataDirPart, Part, PartDone, ShardJob, extraction_folder,
                                       install_dir, map_in_threads, merge_parts, run_shards)
from mslam.data.kaldi import DataDirError

log = logging.getLogger("mslam.data")

# The 102 language codes of FLEURS v2 (HF google/fleurs `fleurs.py` v2.0.0).
LANGS = tuple("""
af_za am_et ar_eg as_in ast_es az_az be_by bg_bg bn_in bs_ba ca_es ceb_ph ckb_iq cmn_hans_cn cs_cz cy_gb da_dk
de_de el_gr en_us es_419 et_ee fa_ir ff_sn fi_fi fil_ph fr_fr ga_ie gl_es gu_in ha_ng he_il hi_in hr_hr hu_hu
hy_am id_id ig_ng is_is it_it ja_jp jv_id ka_ge kam_ke kea_cv kk_kz km_kh kn_in ko_kr ky_kg lb_lu lg_ug ln_cd
lo_la lt_lt luo_ke lv_lv mi_nz mk_mk ml_in mn_mn mr_in ms_my mt_mt my_mm nb_no ne_np nl_nl nso_za ny_mw oc_fr
om_et or_in pa_in pl_pl ps_af pt_br ro_ro ru_ru sd_in sk_sk sl_si sn_zw so_so sr_rs sv_se sw_ke ta_in te_in
tg_tj th_th tr_tr uk_ua umb_ao ur_pk uz_uz vi_vn wo_sn xh_za yo_ng yue_hant_hk zu_za
""".split())
SPLITS = ("train", "dev", "test")
# ASSUMPTION: the 5th column (unused here) spells the transcription character by character.
TSV_COLUMNS = ("id", "file_name", "raw_transcription", "transcription", "chars", "num_samples", "gender")

GET_IT = f"run {DOWNLOAD_STAGE}, or point FLEURS in db.sh at a complete copy"
DAMAGED = f"the download is incomplete or corrupt: delete it and {GET_IT}"


def parse_langs(spec: str | None) -> list[str]:
    """`de_de,fr_fr` (or `de_de fr_fr`) -> ['de_de', 'fr_fr']; None or 'all' -> every language."""
    return common.parse_langs(spec, LANGS, "FLEURS")


def download_files(langs: list[str]) -> list[str]:
    """The paths under the URL base that the download stage fetches for these languages."""
    return [path for lang in langs for split in SPLITS
            for path in (f"data/{lang}/audio/{split}.tar.gz", f"data/{lang}/{split}.tsv")]


# ---- audio archives ------------------------------------------------------------------------

def audio_dir(root: Path, lang: str, split: str) -> Path:
    return root / "data" / lang / "audio" / split


def extract_audio(root: Path, lang: str, split: str, bar: tqdm | None = None) -> bool:
    """Extract data/<lang>/audio/<split>.tar.gz into data/<lang>/audio/<split>/ unless that folder exists.

    Members are written flat under their file names (the archive's top folder is not relied on),
    into a temporary folder renamed into place when complete. Returns whether it extracted.
    """
    dest = audio_dir(root, lang, split)
    if dest.is_dir():
        return False
    archive = dest.parent / f"{split}.tar.gz"
    if not archive.is_file():
        raise DataDirError(f"{archive}: not found (nor the extracted folder {dest}); {GET_IT}")
    with extraction_folder(archive, dest.parent / f".{split}.extracting", DAMAGED) as tmp, \
            open(archive, "rb") as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
        done = 0
        for member in tar:
            if member.isfile():
                with tar.extractfile(member) as src, open(tmp / Path(member.name).name, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            if bar is not None:
                bar.update(raw.tell() - done)
                done = raw.tell()
    os.replace(tmp, dest)
    return True


def extract_all(root: Path, langs: list[str], nj: int = 1, progress: bool = True) -> int:
    """Extract every archive not yet extracted (nj at a time); returns how many were extracted."""
    todo = [(lang, split) for lang in langs for split in SPLITS if not audio_dir(root, lang, split).is_dir()]
    missing = [audio_dir(root, lang, split).parent / f"{split}.tar.gz" for lang, split in todo]
    missing = [p for p in missing if not p.is_file()]
    if missing:
        raise DataDirError(f"{missing[0]}: not found ({len(missing)} audio archive(s) missing); {GET_IT}")
    total = sum((audio_dir(root, lang, split).parent / f"{split}.tar.gz").stat().st_size for lang, split in todo)
    with tqdm(total=total, desc="extract FLEURS audio", unit="B", unit_scale=True, disable=not progress or not todo,
              dynamic_ncols=True) as bar:
        return sum(map_in_threads(lambda job: extract_audio(root, *job, bar), todo, nj))


# ---- transcripts ---------------------------------------------------------------------------

@dataclass
class Row:
    """One TSV row of a language and split, with where it came from."""
    where: str            # '<tsv>:<line>'
    file_name: str
    transcription: str
    num_samples: int


def read_tsv(path: Path) -> Iterator[Row]:
    """The rows of a FLEURS v2 TSV, as they are read (blank lines ignored); a row without 7 columns is an error."""
    if not path.is_file():
        raise DataDirError(f"{path}: not found; {GET_IT}")
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            where = f"{path}:{lineno}"
            if len(fields) != len(TSV_COLUMNS):
                raise DataDirError(f"{where}: {len(fields)} TAB-separated columns, expected {len(TSV_COLUMNS)} "
                                   f"({' '.join(TSV_COLUMNS)}); is this a FLEURS v2 TSV? re-download it")
            row = dict(zip(TSV_COLUMNS, fields))
            if not row["num_samples"].isdigit() or int(row["num_samples"]) == 0:
                raise DataDirError(f"{where}: num_samples is '{row['num_samples']}', expected a positive integer")
            if not row["file_name"].strip() or any(c.isspace() for c in row["file_name"]):
                raise DataDirError(f"{where}: file_name '{row['file_name']}' is empty or contains whitespace")
            yield Row(where, row["file_name"], row["transcription"].strip(), int(row["num_samples"]))


# The per-utterance tables, in the order of a row's values (no segments: wav.scp is per utterance).
TABLES = ("wav.scp", "text", "utt2spk", "utt2lang", "utt2num_samples")


def _made_twice(utt: str, label: str, first: int, repeat: int) -> str:
    # Repeated file names get suffixed ids, so this would be a bug here, not a fault of the download.
    return f"utterance id '{utt}' made twice (rows {first} and {repeat} of its language): a bug in {__name__}"


def language_shard(folder: Path, root: Path, lang: str) -> dict[str, int]:
    """One language's utterances per split, streamed into a DataDirPart under `folder`; every referenced
    wav must exist. Returns the utterances per split. What it holds: the names of one split's audio
    files and a count per recording (FLEURS has a few thousand rows per language)."""
    part = DataDirPart(folder, SPLITS, TABLES)
    seen: dict[str, int] = {}   # recording id -> rows so far (across splits: ids stay unique everywhere)
    order = 0
    for split in SPLITS:
        audio = audio_dir(root, lang, split)
        present = set(os.listdir(audio))
        for row in read_tsv(root / "data" / lang / f"{split}.tsv"):
            if row.file_name not in present:
                raise DataDirError(f"{row.where}: audio file {audio / row.file_name} not found; delete {audio} "
                                   f"to extract {split}.tar.gz again, or {GET_IT}")
            recording = f"{lang}_{Path(row.file_name).stem}"
            seen[recording] = seen.get(recording, 0) + 1
            utt = recording if seen[recording] == 1 else f"{recording}-{seen[recording]}"
            order += 1
            part.add(split, utt, order, "", (str((audio / row.file_name).resolve()), row.transcription, recording,
                                             lang, str(row.num_samples)))
    repeats = sum(n - 1 for n in seen.values())
    if repeats:
        log.info("fleurs %s: %d row(s) repeat a file name already listed; kept with ids suffixed -2, -3, ...",
                 lang, repeats)
    return part.finish(_made_twice)


# ---- data dirs -----------------------------------------------------------------------------

SHARD_VERSION = 1   # bump when a language's part changes for the same inputs


def _shard_job(root: Path, lang: str) -> ShardJob:
    tsvs = [root / "data" / lang / f"{split}.tsv" for split in SPLITS]
    inputs = {"version": SHARD_VERSION, "lang": lang, "root": str(root.resolve()),
              "tsvs": [[p.stat().st_size, p.stat().st_mtime_ns] if p.is_file() else None for p in tsvs]}
    return ShardJob(lang, inputs, language_shard, (root, lang))


def prepare(root: str | os.PathLike, out: str | os.PathLike, langs: list[str] | None = None, nj: int = 1,
            progress: bool = True, part: Part | None = None) -> dict[str, int] | PartDone:
    """Extract what is not extracted yet and write <out>/{train,dev,test}. Returns utterances per split.

    Each language is a shard, read `nj` at a time (in processes) into sorted files under <out>.parts/
    and stamped when done; the data dirs are a merge of those files, and a killed run redoes only the
    languages it had not finished. A data dir identical to the one there is left untouched.

    With `part` (J/N), only the J-th of N parts of the languages is extracted, read and stamped, and
    nothing is merged (returns a PartDone): a job of a job array. Every archive belongs to one language,
    so the parts share no work and may start together; the call without `part` afterwards finds their
    shards done and merges."""
    root, out = Path(root), Path(out)
    langs = list(LANGS) if langs is None else langs
    mine = langs if part is None else part.take(langs)
    extracted = extract_all(root, mine, nj=nj, progress=progress)
    if extracted:
        log.info("fleurs: extracted %d audio archive(s)", extracted)
    work = common.parts_folder(out)
    run_shards([_shard_job(root, lang) for lang in mine], work, nj, progress, desc="read FLEURS TSVs")
    if part is not None:
        return PartDone(part, mine, work)
    counts = {}
    for split in SPLITS:
        tmp, n = merge_parts([work / lang for lang in langs], split, TABLES, out / split)
        if install_dir(tmp, out / split):
            log.info("fleurs: wrote %s (%d utterances)", out / split, n)
        else:
            log.info("fleurs: %s unchanged (%d utterances)", out / split, n)
        counts[split] = n
    shutil.rmtree(work, ignore_errors=True)
    return counts
