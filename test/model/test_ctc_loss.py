"""CTC: equals torch's ctc_loss, and stays finite when the input is shorter than the target."""
import torch
import torch.nn.functional as F

from mslam.losses import ctc_loss


def test_ctc_matches_torch_on_a_small_example():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 12, 7, generator=g)
    lengths = torch.tensor([12, 9])
    targets = torch.tensor([[3, 4, 4, 6], [5, 2, 1, 1]])
    target_lengths = torch.tensor([4, 2])
    ours = ctc_loss(logits, lengths, targets, target_lengths, blank=0)
    ref = F.ctc_loss(logits.log_softmax(-1).transpose(0, 1), targets, lengths, target_lengths, blank=0,
                     reduction="none")
    assert torch.allclose(ours, (ref / target_lengths).mean(), atol=1e-6)


def test_ctc_by_hand_on_a_tiny_case():
    # two frames, target "a": paths a-, -a, aa -> p = pa0 pb1 + pb0 pa1 + pa0 pa1
    logits = torch.tensor([[[0.3, 1.0], [0.8, -0.2]]])  # [B=1, T=2, V=2] (0 = blank, 1 = 'a')
    p = logits.softmax(-1)[0]
    expected = -torch.log(p[0, 1] * p[1, 0] + p[0, 0] * p[1, 1] + p[0, 1] * p[1, 1])
    got = ctc_loss(logits, torch.tensor([2]), torch.tensor([[1]]), torch.tensor([1]))
    assert torch.allclose(got, expected, atol=1e-6)


def test_ctc_input_shorter_than_target_is_zero_not_nan():
    logits = torch.randn(2, 3, 6, requires_grad=True)
    targets = torch.tensor([[2, 3, 4, 5, 2], [2, 3, 1, 1, 1]])
    loss = ctc_loss(logits, torch.tensor([3, 3]), targets, torch.tensor([5, 2]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    only_short = ctc_loss(logits[:1], torch.tensor([3]), targets[:1], torch.tensor([5]))
    assert only_short.item() == 0.0
    # and the half/bfloat16 path runs in float32
    bf = ctc_loss(logits.detach().bfloat16(), torch.tensor([3, 3]), targets, torch.tensor([5, 2]))
    assert bf.dtype == torch.float32 and torch.isfinite(bf)
