"""The losses as the pre-training step computes them (over every position, with masks; CTC by its own
forward algorithm) equal their definitions on selected positions and torch's CTC."""
import pytest
import torch
import torch.nn.functional as F

from mslam.losses import ctc_loss, masked_cross_entropy
from mslam.model.pretrain import majority_accuracy, target_usage


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ctc_on_device_equals_torch_in_value_and_gradient(seed):
    g = torch.Generator().manual_seed(seed)
    B, T, V, L = 5, 30, 9, 8
    logits = torch.randn(B, T, V, generator=g, requires_grad=True)
    lengths = torch.tensor([30, 25, 12, 3, 30])
    targets = torch.randint(1, V, (B, L), generator=g)
    targets[:, 2] = targets[:, 1]  # repeated labels need a blank between them
    target_lengths = torch.tensor([8, 5, 0, 6, 1])  # an empty target; an input too short for its target
    ref = ctc_loss(logits, lengths, targets, target_lengths)
    (ref_grad,) = torch.autograd.grad(ref, logits)
    ours = ctc_loss(logits, lengths, targets, target_lengths, lengths_on_device=True)
    (our_grad,) = torch.autograd.grad(ours, logits)
    assert torch.allclose(ours, ref, atol=1e-5)
    assert torch.allclose(our_grad, ref_grad, atol=1e-6)


@pytest.mark.parametrize("on_device", [True, False])
def test_ctc_leaves_out_padding_rows(on_device):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 10, 6, generator=g)
    targets = torch.randint(1, 6, (3, 4), generator=g)
    real = ctc_loss(logits[:2], torch.tensor([10, 7]), targets[:2], torch.tensor([4, 2]), lengths_on_device=on_device)
    padded = ctc_loss(logits, torch.tensor([10, 7, 0]), targets, torch.tensor([4, 2, 0]), lengths_on_device=on_device)
    assert torch.allclose(real, padded)


def test_masked_cross_entropy_over_all_positions_equals_it_on_the_selected_ones():
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(3, 7, 11, generator=g), torch.randint(0, 11, (3, 7), generator=g)
    mask = torch.rand(3, 7, generator=g) < 0.4
    loss, acc = masked_cross_entropy(logits, targets, mask)
    ref_loss, ref_acc = masked_cross_entropy(logits[mask], targets[mask])
    assert torch.allclose(loss, F.cross_entropy(logits[mask], targets[mask])) and torch.allclose(loss, ref_loss)
    assert torch.allclose(acc, ref_acc)
    empty, empty_acc = masked_cross_entropy(logits.requires_grad_(), targets, torch.zeros_like(mask))
    assert empty.item() == 0.0 and empty_acc.item() == 0.0 and empty.requires_grad


def test_target_statistics_with_a_mask_equal_them_on_the_selected_ids():
    g = torch.Generator().manual_seed(0)
    ids, where = torch.randint(0, 16, (4, 9, 2), generator=g), torch.rand(4, 9, generator=g) < 0.5
    assert torch.allclose(majority_accuracy(ids, 16, where), majority_accuracy(ids[where]))
    for ours, ref in zip(target_usage(ids, 16, where), target_usage(ids[where])):
        assert torch.allclose(ours, ref)


def test_a_batch_padded_to_a_static_shape_trains_with_finite_gradients():
    """Static shapes add empty rows (length 0) and frames; every loss must leave them out cleanly."""
    from mslam.data.pretrain_data import DataConfig, pad_to_static_shape
    from mslam.model.pretrain import PairedPart, PretrainBatch, SpeechPart, TextPart
    from mslam.tasks.pretrain import build_pretrain_model, load_pretrain_config
    torch.manual_seed(0)
    model = build_pretrain_model(load_pretrain_config("tiny"))
    g = torch.Generator().manual_seed(0)
    batch = PretrainBatch(
        SpeechPart(torch.randn(3, 150, 80, generator=g), torch.tensor([150, 120, 90])),
        TextPart(torch.randint(6, 64, (3, 40), generator=g), torch.tensor([40, 30, 12])),
        PairedPart(torch.randn(3, 130, 80, generator=g), torch.tensor([130, 100, 70]),
                   torch.randint(6, 64, (3, 12), generator=g), torch.tensor([12, 9, 5])))
    padded = pad_to_static_shape(batch, DataConfig())
    assert padded.speech.feats.shape == (4, 176, 80) and padded.text.tokens.shape == (4, 64)
    assert padded.paired.feat_lens.tolist() == [130, 100, 70, 0]
    out = model(padded)
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
