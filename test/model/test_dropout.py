"""conformer.dropout: the CPU mask drawn as 16-bit integers behaves as inverted dropout should."""
import pytest
import torch
import torch.nn.functional as F

from mslam.model.conformer import ConformerStack, dropout


def test_identity_in_eval_and_at_zero():
    x = torch.randn(4, 8)
    assert dropout(x, 0.1, training=False) is x
    assert dropout(x, 0.0, training=True) is x


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_drops_share_p_and_scales_the_rest(p):
    torch.manual_seed(0)
    x = torch.randn(1_000_003)  # not a multiple of 4: the last 64-bit draw is only partly used
    y = dropout(x, p, training=True)
    dropped = round(p * 65536)
    kept = y != 0
    # 1M draws: the share's standard error is ~5e-4
    assert abs(kept.float().mean().item() - (1 - dropped / 65536)) < 3e-3
    torch.testing.assert_close(y[kept], x[kept] * (65536 / (65536 - dropped)))
    # unbiased: E[dropout(1)] = 1
    assert abs(dropout(torch.ones(1_000_000), p, training=True).mean().item() - 1.0) < 5e-3


def test_mask_is_random_across_calls_and_repeats_under_a_seed():
    x = torch.ones(4096)
    torch.manual_seed(1)
    a, b = dropout(x, 0.2, True), dropout(x, 0.2, True)
    torch.manual_seed(1)
    assert torch.equal(a, dropout(x, 0.2, True))
    assert not torch.equal(a, b)
    # neighbouring elements come from the same 64-bit draw: they must still be independent
    keep = (a != 0).float().view(-1, 4)
    both = (keep[:, 0] * keep[:, 1]).mean().item()
    assert abs(both - 0.8 ** 2) < 0.05


def test_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(0)
    x = torch.randn(3, 50, 16, requires_grad=True)
    y = dropout(x, 0.25, training=True)
    y.backward(torch.ones_like(y))
    torch.testing.assert_close(x.grad, y.detach() / x.detach())


def test_edge_probabilities_fall_back_to_torch():
    x = torch.ones(100)
    assert torch.equal(dropout(x, 1.0, True), torch.zeros(100))
    torch.manual_seed(0)
    ours = dropout(x, 1e-7, True)  # rounds to no 16-bit level: F.dropout draws it
    torch.manual_seed(0)
    assert torch.equal(ours, F.dropout(x, 1e-7, True))


def test_activation_checkpointing_replays_the_same_masks():
    """Recomputing a block in backward must redraw the masks it drew in forward (same gradients)."""
    torch.manual_seed(0)
    stack = ConformerStack(2, d_model=32, ffn_dim=64, heads=4, conv_kernel=3, dropout=0.3).train()
    x, lengths = torch.randn(2, 20, 32), torch.tensor([20, 13])
    grads = []
    for checkpointed in (False, True):
        stack.checkpoint_activations = checkpointed
        stack.zero_grad()
        torch.manual_seed(5)
        stack(x, lengths).square().sum().backward()
        grads.append([p.grad.clone() for p in stack.parameters()])
    for plain, recomputed in zip(*grads):
        torch.testing.assert_close(plain, recomputed)
