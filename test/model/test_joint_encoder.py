"""The joint encoder: front-end lengths, padding invariance, no NaN on empty inputs, TLM masking."""
import pytest
import torch

from model_test_utils import pad_batch
from mslam.model.frontend import SpeechFrontEnd, conv_subsampled_lengths
from mslam.model.pretrain import PairedPart, PretrainBatch
from mslam.tasks.pretrain import build_pretrain_model, load_pretrain_config


def tiny_model(**encoder):
    cfg = load_pretrain_config("tiny")
    for k, v in encoder.items():
        setattr(cfg.model.encoder, k, v)
    torch.manual_seed(0)
    return build_pretrain_model(cfg).eval()


@pytest.mark.parametrize("subsampling", [4, 2])
@pytest.mark.parametrize("length", [5, 7, 8, 9, 10, 11, 50, 101])
def test_frontend_lengths_match_the_convolutions(length, subsampling):
    fe = SpeechFrontEnd(80, 4, 16, subsampling)
    out, lens = fe(torch.randn(1, length, 80), torch.tensor([length]))
    expected = conv_subsampled_lengths(torch.tensor([length]), subsampling).item()
    assert lens.item() == expected and out.shape[1] >= expected
    if length >= SpeechFrontEnd.MIN_FRAMES:
        assert out.shape[1] == expected
        assert abs(expected - length / subsampling) <= 3  # one output frame per `subsampling` input frames


def test_frontend_subsampled_lengths_by_hand():
    assert conv_subsampled_lengths(torch.tensor([0, 1, 2, 3, 6, 7])).tolist() == [0, 0, 0, 0, 0, 1]
    # 2x: (L-1)//2 frames after the first convolution, two fewer after the second (stride 1 in time)
    assert conv_subsampled_lengths(torch.tensor([0, 4, 5, 6, 7, 101]), 2).tolist() == [0, 0, 0, 0, 1, 48]
    with pytest.raises(ValueError, match="subsampling must be 2 or 4"):
        SpeechFrontEnd(80, 4, 16, 3)


@pytest.mark.parametrize("speech_pos,conv_norm", [("none", "group"), ("sinusoidal", "layer"), ("none", "batch")])
def test_speech_padding_invariance(speech_pos, conv_norm):
    model = tiny_model(speech_pos=speech_pos, conv_norm=conv_norm)
    g = torch.Generator().manual_seed(0)
    utts = [torch.randn(n, 80, generator=g) for n in (93, 160, 41)]
    feats, lens = pad_batch(utts)
    with torch.no_grad():
        top, out_lens = model.encoder(feats, lens)
        for i, u in enumerate(utts):
            alone, alone_len = model.encoder(u[None], torch.tensor([u.shape[0]]))
            n = alone_len.item()
            assert out_lens[i].item() == n == alone.shape[1]
            assert torch.allclose(top[i, :n], alone[0], atol=1e-5), (top[i, :n] - alone[0]).abs().max()
            assert (top[i, n:] == 0).all()


def test_text_padding_invariance():
    model = tiny_model()
    g = torch.Generator().manual_seed(1)
    seqs = [torch.randint(6, 64, (n,), generator=g) for n in (17, 40, 3)]
    tokens, lens = pad_batch(seqs, pad_value=1)
    with torch.no_grad():
        top = model.encoder.encode_text(tokens, lens)
        for i, s in enumerate(seqs):
            alone = model.encoder.encode_text(s[None], torch.tensor([len(s)]))
            assert torch.allclose(top[i, : len(s)], alone[0], atol=1e-5)


def test_paired_padding_invariance():
    model = tiny_model()
    g = torch.Generator().manual_seed(2)
    utts = [torch.randn(n, 80, generator=g) for n in (120, 61, 90)]
    seqs = [torch.randint(6, 64, (n,), generator=g) for n in (9, 25, 14)]
    feats, flens = pad_batch(utts)
    tokens, tlens = pad_batch(seqs, pad_value=1)
    with torch.no_grad():
        s_out, s_lens, t_out = model.encoder.encode_paired(feats, flens, tokens, tlens)
        for i in range(3):
            s1, l1, t1 = model.encoder.encode_paired(utts[i][None], flens[i:i + 1], seqs[i][None], tlens[i:i + 1])
            n, m = l1.item(), len(seqs[i])
            assert s_lens[i].item() == n
            assert torch.allclose(s_out[i, :n], s1[0, :n], atol=1e-5)
            assert torch.allclose(t_out[i, :m], t1[0, :m], atol=1e-5)


def test_empty_and_fully_padded_rows_give_no_nan():
    model = tiny_model()
    feats = torch.randn(3, 40, 80)
    lens = torch.tensor([40, 5, 0])  # 5 frames -> 0 after subsampling
    with torch.no_grad():
        top, out_lens = model.encoder(feats, lens)
    assert out_lens.tolist()[1:] == [0, 0]
    assert torch.isfinite(top).all() and (top[1:] == 0).all()
    model.train()
    batch = PretrainBatch(paired=PairedPart(feats, lens, torch.randint(6, 64, (3, 6)), torch.tensor([6, 3, 0])))
    out = model(batch)
    out["loss"].backward()
    assert all(torch.isfinite(v).all() for v in out.values())
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_tlm_masks_both_modalities():
    cfg = load_pretrain_config("tiny")
    cfg.objective.tlm.speech_mask.replace = "learned"
    torch.manual_seed(0)
    model = build_pretrain_model(cfg).train()
    seen = {}

    def capture(name, index):
        def hook(module, args):
            seen.setdefault(name, args[index].detach().clone())
        return hook

    model.encoder.speech_layers.register_forward_pre_hook(capture("speech_in", 0))
    model.encoder.text_frontend.register_forward_pre_hook(capture("tokens", 0))
    model.encoder.shared_layers.register_forward_pre_hook(capture("joint_lens", 1))
    g = torch.Generator().manual_seed(3)
    feats, flens = torch.randn(2, 300, 80, generator=g), torch.tensor([300, 200])
    tokens = torch.randint(6, 64, (2, 80), generator=g)
    tlens = torch.tensor([80, 60])
    tokens[1, 60:] = 1
    out = model(PretrainBatch(paired=PairedPart(feats, flens, tokens, tlens)))
    emb = model.tlm_speech_masker.embedding.detach()
    x, slens = model.encoder.speech_features(feats, flens)
    masked_frames = (seen["speech_in"] == emb).all(-1)
    assert masked_frames.any() and not masked_frames.all()
    assert torch.allclose(seen["speech_in"][~masked_frames], x.detach()[~masked_frames])
    changed_chars = seen["tokens"] != tokens
    assert (seen["tokens"] == 3).sum() > 0 and changed_chars.sum() > 0
    assert torch.equal(seen["joint_lens"], slens + tlens)  # one sequence [speech ; text] per pair
    m = cfg.objective.tlm.speech_mask
    expected = 1 - (1 - m.prob) ** m.span  # the masked fraction away from the edges
    assert abs(out["tlm_speech_mask_frac"] - expected) < 0.5 * expected and out["tlm_text_mask_frac"] == 0.5
    assert out["tlm_speech"] > 0 and out["tlm_text"] > 0


def test_hidden_states_end_with_the_encoder_output():
    model = tiny_model(speech_pos="sinusoidal")
    feats, lens = pad_batch([torch.randn(n, 80) for n in (60, 41)])
    with torch.no_grad():
        top, out_lens = model.encoder(feats, lens)
        states, state_lens = model.encoder.hidden_states(feats, lens)
    layers = len(model.encoder.speech_layers.layers) + len(model.encoder.shared_layers.layers)
    assert len(states) == 1 + layers and torch.equal(state_lens, out_lens)
    for i, n in enumerate(out_lens.tolist()):
        assert torch.allclose(states[-1][i, :n], top[i, :n])
