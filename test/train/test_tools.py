"""average_checkpoints, build_char_vocab, and the config checks of the trainer."""
import pytest
import torch

from mslam.bin.average_checkpoints import main as average_main
from mslam.bin.build_char_vocab import main as vocab_main
from mslam.config import ConfigError
from mslam.data.tokenizer import SPECIALS, CharTokenizer
from mslam.tasks.pretrain import load_pretrain_config
from mslam.train.checkpoint import save_checkpoint
from mslam.train.trainer import pretrain


def test_average_checkpoints_is_the_mean_of_the_last_k(tmp_path):
    states = []
    for step in (1, 2, 3, 4):
        torch.manual_seed(step)
        model = {"w": torch.randn(4, 3), "b": torch.randn(3).half(), "count": torch.tensor(step)}
        states.append(model)
        save_checkpoint(tmp_path, step, {"step": step, "model": model, "config": {"s": step}}, keep=0)
    assert average_main(["--exp-dir", str(tmp_path), "--last", "3", "--out", str(tmp_path / "avg.pt")]) == 0
    avg = torch.load(tmp_path / "avg.pt")
    assert avg["steps"] == [2, 3, 4] and avg["config"] == {"s": 4}
    torch.testing.assert_close(avg["model"]["w"], torch.stack([s["w"] for s in states[1:]]).mean(0))
    assert avg["model"]["b"].dtype == torch.float16
    torch.testing.assert_close(avg["model"]["b"], torch.stack([s["b"].float() for s in states[1:]]).mean(0).half())
    assert int(avg["model"]["count"]) == 4


def test_build_char_vocab_from_shards_and_data_dirs(tiny_corpus, tmp_path, capsys):
    out = tmp_path / "chars.txt"
    assert vocab_main(["--text-shards", str(tiny_corpus / "text_shards/train"), "--data-dirs",
                       str(tiny_corpus / "asr/train"), "--out", str(out), "--max-size", "100"]) == 0
    tok = CharTokenizer.load(out)
    assert len(tok) == 100 and tuple(tok.symbols[:len(SPECIALS)]) == SPECIALS
    assert "100 symbols" in capsys.readouterr().out


def test_the_vocabulary_file_sets_the_model_size_and_a_smaller_config_is_an_error(tiny_config, tmp_path):
    n = len(CharTokenizer.load(tiny_config().data.path("chars.txt")))
    with pytest.raises(ConfigError, match=f"vocab_size is 64 but .*chars.txt has {n} symbols"):
        pretrain(tiny_config(**{"model.vocab_size": 64}), tmp_path, progress_bar=False)
    cfg = tiny_config(**{"trainer.max_steps": 1})
    pretrain(cfg, tmp_path, progress_bar=False)
    assert cfg.model.vocab_size == n


def test_overrides_are_checked_against_the_schema():
    with pytest.raises(ConfigError, match="did you mean 'max_steps'"):
        load_pretrain_config("tiny", ["trainer.max_step=3"])
    with pytest.raises(ConfigError, match="expected key.path=value"):
        load_pretrain_config("tiny", ["trainer.max_steps"])
    assert load_pretrain_config("mini", ["trainer.max_steps=7"]).trainer.max_steps == 7
