"""Scoring: WER/CER, BLEU with the CoVoST-2 groups, accuracy, `mslam.bin.score` and the paper tables.

Figures are checked against hand-computed values (edit distances worked out on paper) or, for BLEU,
against sacreBLEU's corpus BLEU on the same sentences.
"""
from __future__ import annotations

import json

import pytest
import sacrebleu

from mslam.bin import paper_tables
from mslam.bin import score as score_cli
from mslam.scoring.metrics import COVOST2_GROUPS, ScoringError, accuracy, bleu, error_rates


# ----------------------------------------------------------------------------- error rates
def test_error_rates_per_language_and_plain_mean():
    # lang A: "a b c d" -> "a x c": b->x substituted, d deleted: 2 errors / 4 words = 50 %.
    #         chars "a b c d" (7) -> "a x c" (5): 1 substitution + 2 deletions (" d") = 3 / 7.
    # lang B: perfect.
    refs = {"a1": "a b c d", "b1": "hello world"}
    hyps = {"a1": "a x c", "b1": "hello world"}
    out = error_rates(refs, hyps, {"a1": "A", "b1": "B"})
    assert set(out["languages"]) == {"A", "B"}
    a, b = out["languages"]["A"], out["languages"]["B"]
    assert a["wer"] == pytest.approx(50.0)
    assert a["cer"] == pytest.approx(300.0 / 7)
    assert (a["words"], a["chars"], a["utterances"]) == (4, 7, 1)
    assert b["wer"] == 0.0 and b["cer"] == 0.0
    assert (b["words"], b["chars"]) == (2, 11)
    assert out["average"]["wer"] == pytest.approx(25.0)
    assert out["average"]["cer"] == pytest.approx((300.0 / 7 + 0.0) / 2)


def test_error_rates_pool_counts_within_a_language():
    # Per language the errors and lengths are summed over utterances (corpus WER), not averaged:
    # "a b c d"->"a x c" (2 errors / 4) and "e f"->"e f" (0 / 2) give 2/6, not mean(50, 0) = 25.
    refs = {"u1": "a b c d", "u2": "e f", "v1": "x y z"}
    hyps = {"u1": "a x c", "u2": "e f", "v1": "x"}  # v1: 2 deletions / 3 words
    out = error_rates(refs, hyps, {"u1": "A", "u2": "A", "v1": "B"})
    assert out["languages"]["A"]["wer"] == pytest.approx(100.0 * 2 / 6)
    assert out["languages"]["A"]["utterances"] == 2
    assert out["languages"]["B"]["wer"] == pytest.approx(100.0 * 2 / 3)
    # the average over languages is the plain mean of the per-language figures (not utterance-weighted)
    assert out["average"]["wer"] == pytest.approx((100.0 * 2 / 6 + 100.0 * 2 / 3) / 2)


def test_error_rates_cer_hand_example():
    # "abcd" -> "abd": one deleted character of 4; "kitten" -> "sitting": the classic distance 3 of 6.
    out = error_rates({"u1": "abcd", "u2": "kitten"}, {"u1": "abd", "u2": "sitting"}, {"u1": "A", "u2": "B"})
    assert out["languages"]["A"]["cer"] == pytest.approx(25.0)
    assert out["languages"]["B"]["cer"] == pytest.approx(50.0)
    assert out["languages"]["A"]["wer"] == pytest.approx(100.0)  # one word, wrong


def test_error_rates_empty_reference_costs_hypothesis_length():
    # Documented: an empty reference costs its hypothesis' length (words / characters), adds no length.
    refs = {"u1": "", "u2": "a b"}
    hyps = {"u1": "x y", "u2": "a b"}
    out = error_rates(refs, hyps, {"u1": "A", "u2": "A"})["languages"]["A"]
    assert out["words"] == 2 and out["chars"] == 3
    assert out["wer"] == pytest.approx(100.0 * 2 / 2)   # 2 inserted words over the 2 reference words
    assert out["cer"] == pytest.approx(100.0 * 3 / 3)   # "x y" is 3 characters over "a b" (3)
    # an empty reference with an empty hypothesis costs nothing
    out = error_rates({"u1": "", "u2": "a b"}, {"u1": "", "u2": "a b"}, {"u1": "A", "u2": "A"})
    assert out["languages"]["A"]["wer"] == 0.0


def test_error_rates_empty_hypothesis_is_all_deletions():
    out = error_rates({"u1": "a b c"}, {"u1": ""}, {"u1": "A"})
    assert out["languages"]["A"]["wer"] == pytest.approx(100.0)


def test_error_rates_without_language_goes_to_und():
    out = error_rates({"u1": "a b", "u2": "c"}, {"u1": "a b", "u2": "d"}, {"u1": "A"})
    assert set(out["languages"]) == {"A", "und"}
    assert out["languages"]["und"]["wer"] == pytest.approx(100.0)


def test_mismatched_ids_raise_naming_first_missing():
    refs = {"u1": "a", "u2": "b", "u3": "c"}
    with pytest.raises(ScoringError, match=r"2 utterance\(s\) without a hypothesis \(first: u2\)"):
        error_rates(refs, {"u1": "a"}, {})
    with pytest.raises(ScoringError, match=r"first: zz"):
        error_rates(refs, {"u1": "a", "u2": "b", "u3": "c", "zz": "d"}, {})
    with pytest.raises(ScoringError, match=r"first: u3"):
        bleu(refs, {"u1": "a", "u2": "b"}, {})
    with pytest.raises(ScoringError, match=r"first: u1"):
        accuracy(refs, {"u2": "b", "u3": "c"})


# ----------------------------------------------------------------------------- BLEU
SENTS = {
    "fr": [("the cat sat on the mat today", "the cat sat on a mat today"),
           ("a quick brown fox jumps over the dog", "the quick brown fox jumped over the dog")],
    "de": [("we went to the market in the morning", "we went to the market in the morning"),
           ("it is raining again in the city", "it is raining again in the city")],  # perfect
    "it": [("she reads a long book every evening", "she read a long book each evening")],
    "tr": [("my brother plays football with his friends", "my brother plays soccer with his friends")],
    "xx": [("this language belongs to no group at all", "this language is in no group at all")],
}


def _bleu_inputs():
    refs, hyps, utt2lang = {}, {}, {}
    for lang, pairs in SENTS.items():
        for i, (r, h) in enumerate(pairs):
            u = f"{lang}-{i}"
            refs[u], hyps[u], utt2lang[u] = r, h, lang
    return refs, hyps, utt2lang


def test_bleu_per_language_equals_sacrebleu_and_group_means():
    refs, hyps, utt2lang = _bleu_inputs()
    out = bleu(refs, hyps, utt2lang, COVOST2_GROUPS)
    expected = {lang: sacrebleu.corpus_bleu([h for _, h in pairs], [[r for r, _ in pairs]]).score
                for lang, pairs in SENTS.items()}
    assert set(out["languages"]) == set(SENTS)
    for lang, value in expected.items():
        assert out["languages"][lang]["bleu"] == pytest.approx(value)
        assert out["languages"][lang]["utterances"] == len(SENTS[lang])
    assert out["languages"]["de"]["bleu"] == pytest.approx(100.0)
    assert 0 < out["languages"]["fr"]["bleu"] < 100  # sentences long enough for a non-zero BLEU
    groups = out["groups"]
    assert groups["high"] == pytest.approx((expected["fr"] + expected["de"]) / 2)
    assert groups["mid"] == pytest.approx(expected["it"])
    assert groups["low"] == pytest.approx(expected["tr"])
    assert groups["all"] == pytest.approx(sum(expected.values()) / len(expected))
    assert out["ungrouped"] == ["xx"]
    assert out["group_members"] == COVOST2_GROUPS


def test_bleu_group_without_languages_is_absent():
    refs, hyps, utt2lang = _bleu_inputs()
    keep = {u for u, lang in utt2lang.items() if lang in ("fr", "de")}
    out = bleu({u: refs[u] for u in keep}, {u: hyps[u] for u in keep}, {u: utt2lang[u] for u in keep})
    assert set(out["groups"]) == {"high", "all"}
    assert out["groups"]["high"] == pytest.approx(out["groups"]["all"])
    assert out["ungrouped"] == []


def test_bleu_custom_groups():
    refs, hyps, utt2lang = _bleu_inputs()
    out = bleu(refs, hyps, utt2lang, {"g": ["xx", "de"]})
    assert out["groups"]["g"] == pytest.approx((out["languages"]["xx"]["bleu"] + 100.0) / 2)
    assert out["ungrouped"] == ["fr", "it", "tr"]


def test_constant_hypothesis_baseline_is_what_a_constant_system_scores():
    # 6 references per language, one of them three times: the best constant output is that one
    common = "please show me the balance of my account"
    refs, utt2lang = {}, {}
    for lang in ("de", "fr"):
        for i, r in enumerate([common] * 3 + ["one two three four five", "the card is lost today",
                                              "send money to anna now"]):
            refs[f"{lang}-{i}"], utt2lang[f"{lang}-{i}"] = r, lang
    constant = {u: common for u in refs}
    out = bleu(refs, constant, utt2lang, {})
    assert out["distinct_hypotheses"] == 1
    assert out["constant_baseline"]["hypothesis"] == common
    # the baseline is the score of that constant system, computed the same way
    assert out["constant_baseline"]["bleu_all"] == pytest.approx(out["groups"]["all"])
    assert 0 < out["groups"]["all"] < 100
    perfect = bleu(refs, refs, utt2lang, {})
    assert perfect["groups"]["all"] == pytest.approx(100.0) and perfect["distinct_hypotheses"] == 4
    assert perfect["constant_baseline"] == out["constant_baseline"]  # a property of the references
    # no other single output does better
    for other in set(refs.values()):
        assert bleu(refs, {u: other for u in refs}, utt2lang, {}, baselines=False)["groups"]["all"] <= \
            out["constant_baseline"]["bleu_all"] + 1e-9


def test_covost2_groups_are_the_papers():
    assert COVOST2_GROUPS["high"] == ["fr", "de", "es", "ca"]
    assert COVOST2_GROUPS["mid"] == ["fa", "it", "ru", "pt", "zh"]
    assert COVOST2_GROUPS["low"] == ["tr", "ar", "et", "mn", "nl", "sv", "lv", "sl", "ta", "ja", "id", "cy"]
    every = [lang for members in COVOST2_GROUPS.values() for lang in members]
    assert len(every) == 21 and len(set(every)) == 21
    assert set(COVOST2_GROUPS) == {"high", "mid", "low"}


# ----------------------------------------------------------------------------- accuracy
def test_accuracy_confusion_per_language_per_class():
    refs = {"u1": "cat", "u2": "cat", "u3": "cat", "u4": "dog", "u5": "dog", "u6": "owl"}
    hyps = {"u1": "cat", "u2": "dog", "u3": "cat", "u4": "dog", "u5": "dog", "u6": "cat"}
    utt2lang = {"u1": "en", "u2": "en", "u3": "fr", "u4": "fr", "u5": "fr", "u6": "fr"}
    out = accuracy(refs, hyps, utt2lang)
    assert out["accuracy"] == pytest.approx(100.0 * 4 / 6)
    assert out["utterances"] == 6
    assert out["classes"] == ["cat", "dog", "owl"]
    # rows: reference class, columns: predicted class
    assert out["confusion"] == [[2, 1, 0],
                                [0, 2, 0],
                                [1, 0, 0]]
    assert out["per_class"] == pytest.approx({"cat": 100.0 * 2 / 3, "dog": 100.0, "owl": 0.0})
    assert out["languages"]["en"] == {"accuracy": pytest.approx(50.0), "utterances": 2}
    assert out["languages"]["fr"] == {"accuracy": pytest.approx(75.0), "utterances": 4}
    # a constant "cat" would score 3 of 6
    assert out["majority_class"] == "cat" and out["majority_accuracy"] == pytest.approx(50.0)


def test_accuracy_class_only_predicted_has_no_per_class_figure():
    out = accuracy({"u1": "a", "u2": "b"}, {"u1": "a", "u2": "z"})
    assert out["classes"] == ["a", "b", "z"]
    assert out["confusion"] == [[1, 0, 0], [0, 0, 1], [0, 0, 0]]
    assert set(out["per_class"]) == {"a", "b"}
    assert out["accuracy"] == pytest.approx(50.0)
    assert "languages" not in out


# ----------------------------------------------------------------------------- mslam.bin.score
def _write(path, rows: dict):
    path.write_text("".join(f"{k} {v}\n" for k, v in sorted(rows.items())), encoding="utf-8")


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    utts = ["de-1", "de-2", "fr-1", "fr-2"]
    _write(d / "text", {"de-1": "guten morgen", "de-2": "eins zwei drei vier",
                        "fr-1": "bonjour", "fr-2": "un deux trois"})
    _write(d / "text.en", {"de-1": "good morning to you my friend", "de-2": "one two three four five six",
                           "fr-1": "hello and welcome to the show", "fr-2": "one two three and then four"})
    _write(d / "utt2intent", {"de-1": "greet", "de-2": "count", "fr-1": "greet", "fr-2": "count"})
    _write(d / "utt2lang", {u: u[:2] for u in utts})
    _write(d / "utt2spk", {u: u[:2] for u in utts})
    return d


def test_score_asr_end_to_end(data_dir, tmp_path):
    hyp = tmp_path / "dec" / "hyp"
    hyp.parent.mkdir()
    # de: "eins zwei drei vier" -> "eins zwo drei": 1 sub + 1 del over 6 words; fr perfect
    # (the extra spaces are normalised away).
    _write(hyp, {"de-1": "guten morgen", "de-2": "eins zwo drei", "fr-1": "bonjour", "fr-2": "un  deux   trois"})
    scores = score_cli.score("asr", data_dir, hyp)
    written = json.loads((hyp.parent / "scores.json").read_text())
    assert written == json.loads(json.dumps(scores))
    assert written["task"] == "asr"
    assert written["languages"]["de"]["wer"] == pytest.approx(100.0 * 2 / 6)
    assert written["languages"]["fr"]["wer"] == 0.0
    assert written["average"]["wer"] == pytest.approx(100.0 * 2 / 6 / 2)
    md = (hyp.parent / "result.md").read_text()
    assert "| language | utterances | WER % | CER % |" in md
    assert "|---|---|---|---|" in md
    assert "| de | 2 | 33.3 |" in md
    assert "| average | 4 | 16.7 |" in md
    assert not (hyp.parent / "confusion.png").exists()


def test_score_st_end_to_end(data_dir, tmp_path):
    refs = {"de-1": "good morning to you my friend", "de-2": "one two three four five six",
            "fr-1": "hello and welcome to the show", "fr-2": "one two three and then four"}
    hyps = dict(refs, **{"fr-1": "hello and welcome to this show", "fr-2": "one two three then four"})
    hyp = tmp_path / "hyp"
    _write(hyp, hyps)
    out = tmp_path / "out"
    scores = score_cli.score("st", data_dir, hyp, out)
    fr = sacrebleu.corpus_bleu([hyps["fr-1"], hyps["fr-2"]], [[refs["fr-1"], refs["fr-2"]]]).score
    written = json.loads((out / "scores.json").read_text())
    assert written["languages"]["de"]["bleu"] == pytest.approx(100.0)
    assert written["languages"]["fr"]["bleu"] == pytest.approx(fr)
    assert written["groups"]["high"] == pytest.approx((100.0 + fr) / 2)
    assert written["groups"]["all"] == pytest.approx((100.0 + fr) / 2)
    assert "mid" not in written["groups"]
    assert scores["groups"] == written["groups"]
    md = (out / "result.md").read_text()
    assert "| source language | utterances | BLEU |" in md and "|---|---|---|" in md
    assert "| avg. high |  |" in md


def test_score_intent_end_to_end_with_confusion_png(data_dir, tmp_path):
    hyp = tmp_path / "hyp"
    _write(hyp, {"de-1": "greet", "de-2": "greet", "fr-1": "greet", "fr-2": "count"})
    out = tmp_path / "out"
    score_cli.score("intent", data_dir, hyp, out)
    written = json.loads((out / "scores.json").read_text())
    assert written["accuracy"] == pytest.approx(75.0)
    assert written["classes"] == ["count", "greet"]
    assert written["confusion"] == [[1, 1], [0, 2]]
    assert written["languages"]["de"]["accuracy"] == pytest.approx(50.0)
    assert written["languages"]["fr"]["accuracy"] == pytest.approx(100.0)
    png = out / "confusion.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "result.md").read_text()
    assert "| language | utterances | accuracy % |" in md and "| all | 4 | 75.0 |" in md


def test_score_main_missing_hypothesis(data_dir, tmp_path, capsys):
    hyp = tmp_path / "hyp"
    _write(hyp, {"de-1": "guten morgen", "de-2": "eins", "fr-2": "un deux trois"})
    rc = score_cli.main(["--task", "asr", "--data", str(data_dir), "--hyp", str(hyp)])
    assert rc == 1
    err = capsys.readouterr().err
    assert err.startswith("score: error:")
    assert "1 utterance(s) without a hypothesis (first: fr-1)" in err
    assert not (tmp_path / "scores.json").exists()


def test_score_main_success_prints_headline(data_dir, tmp_path, capsys):
    hyp = tmp_path / "hyp"
    _write(hyp, {"de-1": "greet", "de-2": "count", "fr-1": "count", "fr-2": "count"})
    rc = score_cli.main(["--task", "intent", "--data", str(data_dir), "--hyp", str(hyp)])
    assert rc == 0
    assert "accuracy 75.00" in capsys.readouterr().out


def test_score_main_missing_reference_table(tmp_path, capsys):
    d = tmp_path / "data"
    d.mkdir()
    _write(d / "text", {"u1": "a"})
    hyp = tmp_path / "hyp"
    _write(hyp, {"u1": "a"})
    assert score_cli.main(["--task", "st", "--data", str(d), "--hyp", str(hyp)]) == 1
    assert "text.en" in capsys.readouterr().err


# ----------------------------------------------------------------------------- paper tables
def _scores(tmp_path, name, task, data_dir, hyps: dict) -> str:
    hyp = tmp_path / name / "hyp"
    hyp.parent.mkdir(parents=True)
    _write(hyp, hyps)
    score_cli.score(task, data_dir, hyp)
    return str(hyp.parent / "scores.json")


def _rows(table: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in table.strip().splitlines()]


def test_paper_table_st(data_dir, tmp_path):
    refs = {"de-1": "good morning to you my friend", "de-2": "one two three four five six",
            "fr-1": "hello and welcome to the show", "fr-2": "one two three and then four"}
    perfect = _scores(tmp_path, "a", "st", data_dir, refs)
    worse = _scores(tmp_path, "b", "st", data_dir, dict(refs, **{"de-2": "one two three four five seven"}))
    de = sacrebleu.corpus_bleu(["good morning to you my friend", "one two three four five seven"],
                               [["good morning to you my friend", "one two three four five six"]]).score
    table, numbers = paper_tables.build("st", [f"perfect={perfect}", f"worse={worse}"])
    rows = _rows(table)
    assert rows[0] == ["X -> English (BLEU)", "high", "mid", "low", "all"]
    assert rows[1] == ["---"] * 5
    assert rows[2] == ["perfect", "100.0", "-", "-", "100.0"]
    assert rows[3] == ["worse", f"{(de + 100) / 2:.1f}", "-", "-", f"{(de + 100) / 2:.1f}"]
    assert len(rows) == 4
    assert set(numbers) == {"perfect", "worse"}
    assert _rows(paper_tables.build("st", [f"perfect={perfect}"], corpus="CoVoST 2")[0])[0][0] == \
        "CoVoST 2 X -> English (BLEU)"


def test_paper_table_asr(data_dir, tmp_path):
    refs = {"de-1": "guten morgen", "de-2": "eins zwei drei vier", "fr-1": "bonjour", "fr-2": "un deux trois"}
    vox = _scores(tmp_path, "vox", "asr", data_dir, refs)
    mls = _scores(tmp_path, "mls", "asr", data_dir, dict(refs, **{"fr-1": "salut"}))  # fr WER 1/4 -> avg 12.5
    vox2 = _scores(tmp_path, "vox2", "asr", data_dir, dict(refs, **{"de-1": "guten tag"}))  # de 1/6 -> 8.3
    table, numbers = paper_tables.build("asr", [f"m1:VoxPopuli={vox}", f"m1:MLS={mls}", f"m2:VoxPopuli={vox2}"])
    rows = _rows(table)
    assert rows[0] == ["Model (avg. WER %)", "VoxPopuli", "MLS"]
    assert rows[2] == ["m1", "0.0", "12.5"]
    assert rows[3] == ["m2", "8.3", "-"]
    assert set(numbers) == {"m1", "m2"} and set(numbers["m1"]) == {"VoxPopuli", "MLS"}
    assert _rows(paper_tables.build("asr", [f"m1:test={vox}"], corpus="VoxPopuli")[0])[0] == \
        ["Model (VoxPopuli avg. WER %)", "test"]


def test_paper_table_cls(data_dir, tmp_path):
    intents = {"de-1": "greet", "de-2": "count", "fr-1": "greet", "fr-2": "greet"}  # 3/4
    langs = {"de-1": "de", "de-2": "de", "fr-1": "de", "fr-2": "fr"}                 # 3/4
    a = _scores(tmp_path, "a", "intent", data_dir, intents)
    b = _scores(tmp_path, "b", "langid", data_dir, langs)
    c = _scores(tmp_path, "c", "intent", data_dir, dict(intents, **{"fr-2": "count"}))  # 4/4
    # without ":COLUMN" the column is the scores' task
    table, _ = paper_tables.build("cls", [f"m1:intent={a}", f"m1:langid={b}", f"m2={c}"])
    rows = _rows(table)
    assert rows[0] == ["Model", "intent acc.", "LangID acc."]
    assert rows[2] == ["m1", "75.0", "75.0"]
    assert rows[3] == ["m2", "100.0", "-"]
    # the corpus is the recipe's, and only the tasks scored get a column
    table, _ = paper_tables.build("cls", [f"tiny={c}"], corpus="digits")
    assert _rows(table)[0] == ["Model", "digits intent acc."]


def test_paper_table_zeroshot(data_dir, tmp_path):
    refs = {"de-1": "good morning to you my friend", "de-2": "one two three four five six",
            "fr-1": "hello and welcome to the show", "fr-2": "one two three and then four"}
    a = _scores(tmp_path, "a", "mt", data_dir, refs)
    sub = tmp_path / "fr_only"
    sub.mkdir()
    for name in ("text", "text.en", "utt2lang"):
        rows = dict(line.split(" ", 1) for line in (data_dir / name).read_text().splitlines())
        _write(sub / name, {u: v for u, v in rows.items() if u.startswith("fr")})
    b = _scores(tmp_path, "b", "mt", sub, {u: v for u, v in refs.items() if u.startswith("fr")})
    table, _ = paper_tables.build("zeroshot", [f"full={a}", f"fr_only={b}"])
    rows = _rows(table)
    assert rows[0] == ["Text -> English (BLEU)", "de", "fr", "all"]
    assert rows[2] == ["full", "100.0", "100.0", "100.0"]
    assert rows[3] == ["fr_only", "-", "100.0", "100.0"]


def test_paper_tables_main_bad_spec(capsys):
    assert paper_tables.main(["--kind", "st", "--model", "no-equals-sign"]) == 1
    assert "expected NAME[:COLUMN]=SCORES_JSON" in capsys.readouterr().err
