"""Bad data dirs, text and vocabularies: each is answered by an error naming the file and line (or the
utterance), or by a documented skip that is counted and reported. Nothing is silently lost."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

import pytest

from reliability_utils import REPO, synthetic_data_dir
from mslam.data.kaldi import DataDir, DataDirError, fix_data_dir, read_table, subset_data_dir


def lines(path, *rows: str) -> None:
    path.write_text("".join(r + "\n" for r in rows))


# ----------------------------------------------------------------------------- tables
def test_non_utf8_text_names_file_line_and_byte(tmp_path):
    d = synthetic_data_dir(tmp_path)
    (d / "text").write_bytes(b"u1 eins\nu2 zw\xe4i\nu3 drei\n")  # Latin-1, not UTF-8
    with pytest.raises(DataDirError, match=r"text:2: not valid UTF-8 \(byte 0xe4 at column 6\)"):
        DataDir(d)


def test_an_empty_transcript_is_kept_as_documented_but_an_empty_speaker_is_named(tmp_path):
    d = synthetic_data_dir(tmp_path, texts=["eins", "", "drei"])
    assert DataDir(d).utterance("u2").text == ""  # silence: the kaldi.py docstring allows it
    lines(d / "utt2spk", "u1 s1", "u2", "u3 s3")
    with pytest.raises(DataDirError, match=r"utt2spk:2: id 'u2' has no value"):
        DataDir(d)


def test_duplicate_ids_name_both_lines(tmp_path):
    d = synthetic_data_dir(tmp_path)
    lines(d / "text", "u1 eins", "u2 zwei", "u2 zwei nochmal", "u3 drei")
    with pytest.raises(DataDirError, match=r"text:3: duplicate id 'u2' \(first on line 2\)"):
        DataDir(d)
    with pytest.raises(DataDirError, match="duplicate id"):
        fix_data_dir(d)  # which line is right cannot be known: not guessed


def test_unsorted_ids_are_named_and_fixed_without_loss(tmp_path):
    d = synthetic_data_dir(tmp_path)
    lines(d / "text", "u2 zwei", "u1 eins", "u3 drei")
    with pytest.raises(DataDirError, match=r"text:2: id 'u1' is out of order after 'u2'.*data_dir fix"):
        DataDir(d)
    assert fix_data_dir(d) == {"kept": 3, "dropped": 0}
    assert list(read_table(d / "text")) == ["u1", "u2", "u3"]


def test_mismatched_ids_between_tables_are_named_and_fixing_counts_the_dropped(tmp_path):
    d = synthetic_data_dir(tmp_path)
    lines(d / "text", "u1 eins", "u2 zwei", "u4 vier")  # u3 missing, u4 unknown elsewhere
    problems = DataDir(d).problems()
    assert any("text: 1 utterance(s) that other tables have are missing, e.g. 'u3'" in p for p in problems)
    assert any("wav.scp: 1 utterance(s) that other tables have are missing, e.g. 'u4'" in p for p in problems)
    from mslam.data.manifest import speech_manifest
    with pytest.raises(DataDirError, match=r"invalid data dir .*data"):
        speech_manifest(d)
    assert fix_data_dir(d) == {"kept": 2, "dropped": 2}
    assert DataDir(d).validate().utt_ids == ["u1", "u2"]


def test_a_missing_or_empty_data_dir_is_named(tmp_path):
    from mslam.data.manifest import speech_manifest
    with pytest.raises(DataDirError, match=r"nowhere: data dir not found"):
        speech_manifest(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataDirError, match=r"empty: no wav.scp, feats.scp or text; not a data dir"):
        DataDir(tmp_path / "empty")


def test_a_data_dir_without_any_length_table_is_named(tmp_path):
    from mslam.data.manifest import speech_manifest
    d = synthetic_data_dir(tmp_path)
    (d / "utt2num_samples").unlink()
    with pytest.raises(DataDirError, match=r"no length for utterance 'u1'.*utt2num_frames, segments, utt2dur or "
                                           r"utt2num_samples"):
        speech_manifest(d)


def test_a_bad_number_in_a_numeric_table_is_named(tmp_path):
    d = synthetic_data_dir(tmp_path)
    lines(d / "utt2num_samples", "u1 16000", "u2 -5", "u3 32000")
    with pytest.raises(DataDirError, match=r"utt2num_samples:2: 'u2' has value '-5'; expected a positive int"):
        DataDir(d)


def test_a_bad_segment_is_named(tmp_path):
    d = synthetic_data_dir(tmp_path)
    lines(d / "segments", "u1 u1 0.0 0.5", "u2 u2 1.0 0.5", "u3 u3 0.0 1.0")
    with pytest.raises(DataDirError, match=r"segments:2: segment 'u2' has start 1.0 and end 0.5"):
        DataDir(d)


def test_a_subset_of_unknown_ids_is_named(tmp_path):
    d = synthetic_data_dir(tmp_path)
    with pytest.raises(DataDirError, match=r"1 requested id\(s\) not in the data dir, e.g. 'u9'"):
        subset_data_dir(d, tmp_path / "sub", utt_list=["u1", "u9"])


def test_a_manifest_cached_before_the_data_dir_changed_is_rebuilt(tmp_path):
    from mslam.data.manifest import speech_manifest
    d = synthetic_data_dir(tmp_path)
    before = speech_manifest(d, cache_dir=tmp_path / "cache")
    lines(d / "utt2num_samples", "u1 16000", "u2 24000", "u3 48000")  # u3 edited: 2 s -> 3 s
    os.utime(d / "utt2num_samples", ns=(1, 1))  # even with an old modification time (the size changed)
    after = speech_manifest(d, cache_dir=tmp_path / "cache")
    assert [r.length for r in after][2] > [r.length for r in before][2]


def test_sigkill_while_writing_a_table_leaves_the_old_table_whole(tmp_path):
    """Writers go through a temporary file and a rename: a writer killed half-way leaves the old table,
    and its temporary file is not taken for a table."""
    d = synthetic_data_dir(tmp_path)
    old = (d / "text").read_text()
    code = ("import os, signal, sys\n"
            "from mslam.data import kaldi\n"
            "real = os.fsync\n"
            "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n"
            "kaldi.write_table(sys.argv[1], {f'u{i}': 'x' * 100 for i in range(1, 20000)})\n")
    r = subprocess.run([sys.executable, "-c", code, str(d / "text")], cwd=REPO, capture_output=True)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert (d / "text").read_text() == old
    leftovers = [p.name for p in d.iterdir() if p.name.endswith(".tmp")]
    assert leftovers and all(p.startswith(".text.") for p in leftovers)
    assert DataDir(d).validate().tables.keys() == {"wav.scp", "text", "utt2spk", "utt2lang", "utt2num_samples"}


def test_a_wav_scp_entry_whose_file_is_gone_stops_pretraining_naming_the_utterance(tmp_path, capsys):
    from mslam.bin.pretrain import main
    from mslam.data.tokenizer import CharTokenizer
    d = synthetic_data_dir(tmp_path, "speech")
    (tmp_path / "speech_audio" / "u2.wav").unlink()
    CharTokenizer.build({"de": ["eins zwei"]}).save(tmp_path / "chars.txt")
    code = main(["--config", "tiny", "--output-dir", str(tmp_path / "out"), "--no-progress", "--set",
                 f"data.root={tmp_path}", "data.speech={dirs: [speech], batch_sequences: 4, buckets: 1}",
                 "data.num_workers=0", "trainer.max_steps=2", "trainer.device=cpu", "trainer.tensorboard=false"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert f"pretrain: error: utterance 'u2': audio file '{d.parent / 'speech_audio' / 'u2.wav'}' not found" in err


# ----------------------------------------------------------------------------- vocabularies and text
def test_characters_outside_the_vocabulary_are_named_in_strict_mode(tmp_path):
    from mslam.data.tokenizer import UNK_ID, CharTokenizer
    tok = CharTokenizer.build({"de": ["eins zwei drei gabe"]})
    with pytest.raises(ValueError, match=r"utterance 'u7': character\(s\) \['ß', 'ö'\] not in the vocabulary"):
        tok.encode("größe", utt="u7", strict=True)
    assert tok.encode("größe").count(UNK_ID) == 2  # not strict: <unk>, as documented


@pytest.mark.parametrize("content, match", [
    (b"a\nb\n", r"vocab\.txt: character vocabulary must start with <blank>"),
    (b"<blank>\n<pad>\n<unk>\n<mask>\n<s>\n</s>\na\na\n", r"vocab\.txt: character vocabulary has 'a' twice"),
    (b"<blank>\n<pad>\n<unk>\n<mask>\n<s>\n</s>\n\xff\n", r"vocab\.txt:7: not valid UTF-8"),
    (b"<blank>\n<pad>\n<unk>\n<mask>\n<s>\n</s>\n a\n", r"vocab\.txt:7: expected one symbol without spaces"),
    (b"<blank>\n<pad>\n<unk>\n<mask>\n<s>\n</s>\na\n\nb\n", r"vocab\.txt:8: expected one symbol without spaces"),
])
def test_a_broken_vocabulary_file_is_named(tmp_path, content, match):
    from mslam.data.tokenizer import CharTokenizer
    (tmp_path / "vocab.txt").write_bytes(content)
    with pytest.raises(DataDirError, match=match):
        CharTokenizer.load(tmp_path / "vocab.txt")


def test_text_shards_bad_bytes_missing_shards_and_empty_lines(tmp_path):
    from mslam.data.manifest import text_manifest
    shards = tmp_path / "shards"
    shards.mkdir()
    with pytest.raises(DataDirError, match=r"shards: no text shards"):
        text_manifest(shards)
    (shards / "de.txt").write_bytes("eins\n\n  \nzwei\n".encode())
    records = text_manifest(shards)  # empty lines are skipped (documented); ids keep the line numbers
    assert [r.id for r in records] == ["de:1", "de:4"]
    (shards / "fr.txt").write_bytes(b"un\nd\xe9ux\n")
    with pytest.raises(DataDirError, match=r"fr\.txt:2: not valid UTF-8"):
        text_manifest(shards)


def test_an_empty_source_sentence_for_text_input_is_named(tmp_path):
    from mslam.data.finetune_data import text_examples
    d = synthetic_data_dir(tmp_path, texts=["eins", " ", "drei"])
    with pytest.raises(DataDirError, match=r"text: utterance 'u2' has an empty source sentence"):
        text_examples(d, None, None, lambda s, u: list(s.strip()))


def test_a_dev_class_never_seen_in_training_is_named(tmp_path):
    from mslam.tasks.finetune import Targets
    t = Targets("intent", tmp_path / "tokens")
    t.build(["balance", "lost_card"], None)
    t.load()
    with pytest.raises(DataDirError, match=r"utterance 'd1': class 'pay_bill' was not seen in training"):
        t.encode("pay_bill", "d1")


def test_an_empty_transcript_in_the_paired_source_is_named_or_skipped_and_counted(tmp_path, caplog):
    from mslam.data.pretrain_data import DataConfig, SpeechSourceConfig, load_source
    synthetic_data_dir(tmp_path, "paired", texts=["eins", "", "drei"])
    src = SpeechSourceConfig(dirs=["paired"], batch_sequences=4)
    cfg = DataConfig(root=str(tmp_path), paired=src)
    try:
        with caplog.at_level(logging.WARNING, logger="mslam.data"):
            records = load_source("paired", src, cfg, None)
    except DataDirError as e:
        assert "u2" in str(e)
        return
    assert [r.id for r in records] == ["u1", "u3"]
    assert "empty" in caplog.text and "1" in caplog.text


# ----------------------------------------------------------------------------- too long for memory
def test_pretraining_drops_utterances_over_max_frames_with_a_counted_warning(tmp_path, caplog):
    from mslam.config import ConfigError
    from mslam.data.pretrain_data import DataConfig, SpeechSourceConfig, load_source
    synthetic_data_dir(tmp_path, "speech", seconds=(1.0, 2.0, 30.0))
    src = SpeechSourceConfig(dirs=["speech"], batch_sequences=4, max_frames=2000)
    with caplog.at_level(logging.WARNING, logger="mslam.data"):
        records = load_source("speech", src, DataConfig(root=str(tmp_path), speech=src), None)
    assert [r.id for r in records] == ["u1", "u2"]
    assert "data.speech: dropped 1 of 3 utterances (1 longer than max_frames 2000" in caplog.text
    # nothing left: an error, not an empty run
    from mslam.data.pretrain_data import PretrainBatches
    from mslam.data.tokenizer import CharTokenizer
    tight = SpeechSourceConfig(dirs=["speech"], batch_sequences=4, max_frames=50)
    with pytest.raises(ConfigError, match=r"data\.speech: no usable utterances in \['speech'\]"):
        PretrainBatches(DataConfig(root=str(tmp_path), speech=tight), CharTokenizer.build({"x": ["a"]}), seed=0)


def test_finetuning_drops_utterances_over_max_frames_with_a_counted_warning(tmp_path, caplog):
    from mslam.data.finetune_data import BatchConfig, drop_by_length, speech_examples
    d = synthetic_data_dir(tmp_path, seconds=(1.0, 2.0, 31.0))
    examples = speech_examples(d, "text", lambda s, u: list(range(len(s))))
    with caplog.at_level(logging.WARNING, logger="mslam.data"):
        kept = drop_by_length(examples, BatchConfig(max_frames=3000), "train")
    assert [e.id for e in kept] == ["u1", "u2"]
    assert "train: dropped 1 of 3 utterances outside 7..3000 frames (data.batch.min_frames/max_frames)" in caplog.text
    with pytest.raises(DataDirError, match=r"train: no utterance left after the length filter"):
        drop_by_length(examples, BatchConfig(max_frames=10), "train")


# ----------------------------------------------------------------------------- scripts and empty transcripts
# u2: a Cyrillic 'а' (U+0430) that looks like a Latin 'a'; u3: Chinese in a German transcript.
MIXED = ["eins zwei drei", "zwei \u0430pfel", "drei \u4e2d\u6587", "vier, 42!"]


@pytest.mark.parametrize("action, rc, kept", [("report", 0, ["u1", "u2", "u3", "u4", "u5"]),
                                              ("drop", 0, ["u1", "u4"]),
                                              ("fail", 1, ["u1", "u2", "u3", "u4", "u5"])])
def test_characters_outside_the_language_scripts_and_empty_transcripts_are_named(tmp_path, capsys, action, rc,
                                                                                 kept):
    from mslam.bin.data_dir import main
    d = synthetic_data_dir(tmp_path, seconds=(0.1,) * 5, texts=[*MIXED, ""])
    assert main(["scripts", "--action", action, str(d)]) == rc
    out, err = capsys.readouterr()
    assert f"utterance 'u2' (de): 'а' (U+0430 CYRILLIC SMALL LETTER A, Cyrillic)" in err
    assert "utterance 'u3' (de): '中' (U+4E2D CJK UNIFIED IDEOGRAPH-4E2D, Han), '文'" in err
    assert "de: 2 of 4 texts have characters outside Latin" in err and "1 empty text(s)" in err
    assert "3 of 5 utterances have an empty transcript (1) or characters outside their language's scripts (2)" in out
    assert DataDir(d).validate().utt_ids == kept


def test_the_character_vocabulary_reports_or_leaves_out_texts_of_another_script(tmp_path, capsys):
    from mslam.bin.build_char_vocab import main
    d = synthetic_data_dir(tmp_path, seconds=(0.1,) * 4, texts=MIXED)
    assert main(["--data-dirs", str(d), "--out", str(tmp_path / "chars.txt")]) == 0
    assert "de: 2 of 4 texts have characters outside Latin" in capsys.readouterr().err
    assert {"а", "中"} <= set((tmp_path / "chars.txt").read_text().split())   # counted, but not silently
    assert main(["--data-dirs", str(d), "--out", str(tmp_path / "chars.txt"), "--foreign", "drop"]) == 0
    assert not {"а", "中"} & set((tmp_path / "chars.txt").read_text().split())
    assert main(["--data-dirs", str(d), "--out", str(tmp_path / "x.txt"), "--foreign", "fail"]) == 1
    assert "--foreign drop" in capsys.readouterr().err and not (tmp_path / "x.txt").exists()


def test_finetuning_drops_empty_transcripts_with_a_count(tmp_path, caplog):
    from mslam.data.finetune_data import speech_examples
    d = synthetic_data_dir(tmp_path, seconds=(0.5,) * 3, texts=["eins", " ", "drei"])
    with caplog.at_level(logging.WARNING, logger="mslam.data"):
        examples = speech_examples(d, "text", lambda s, u: list(s))
    assert [e.id for e in examples] == ["u1", "u3"]
    assert "dropped 1 of 3 utterances with an empty transcript or translation (first: u2)" in caplog.text
