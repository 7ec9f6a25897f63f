"""Dual-granularity InfoNCE: hand-computed values, PCA against its definition, presets."""
import math

import pytest
import torch
import torch.nn.functional as F

from dgtrs_lib.training.losses import DualGranularityLoss, contrastive_loss, pca_reconstruct


def _ce(logit_row, target, smoothing=0.0):
    """Cross-entropy of one row by hand (log-sum-exp), with uniform label smoothing."""
    lse = math.log(sum(math.exp(v) for v in logit_row))
    n = len(logit_row)
    q = [smoothing / n + (1 - smoothing) * (j == target) for j in range(n)]
    return -sum(qj * (v - lse) for qj, v in zip(q, logit_row))


def test_identity_pairs_hand_value():
    feats = torch.eye(2)
    loss = contrastive_loss(feats, feats, torch.tensor(0.0))  # scale exp(0) = 1
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_asymmetric_hand_value(smoothing):
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    txt = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    s = 2.0
    # i2t logits = s * img @ txt.T = s * [[0.6, 1.0], [0.8, 0.0]]; t2i = its transpose.
    i2t = [[s * 0.6, s * 1.0], [s * 0.8, 0.0]]
    t2i = [[s * 0.6, s * 0.8], [s * 1.0, 0.0]]
    expect = 0.5 * (sum(_ce(i2t[i], i, smoothing) for i in range(2)) / 2
                    + sum(_ce(t2i[i], i, smoothing) for i in range(2)) / 2)
    got = contrastive_loss(img, txt, torch.tensor(math.log(s)), label_smoothing=smoothing)
    assert got.item() == pytest.approx(expect, abs=1e-6)


def test_dual_loss_returns_both_branches_separately():
    torch.manual_seed(1)
    img, lng, sht = (F.normalize(torch.randn(6, 8), dim=-1) for _ in range(3))
    scale = torch.tensor(math.log(10.0))
    loss_long, loss_short = DualGranularityLoss()(img, lng, sht, scale)
    assert loss_long.item() == pytest.approx(contrastive_loss(img, lng, scale).item())
    assert loss_short.item() == pytest.approx(contrastive_loss(img, sht, scale).item())
    assert loss_long.item() != pytest.approx(loss_short.item())
    none_long, only_short = DualGranularityLoss()(img, None, sht, scale)
    assert none_long is None and only_short.item() == pytest.approx(loss_short.item())


def test_pca_matches_covariance_eigenvectors():
    torch.manual_seed(2)
    x = torch.randn(40, 12, dtype=torch.float64) @ torch.randn(12, 12, dtype=torch.float64)
    k = 3
    mu = x.mean(0, keepdim=True)
    cov = (x - mu).T @ (x - mu)
    _, vecs = torch.linalg.eigh(cov)  # ascending eigenvalues
    vk = vecs[:, -k:]
    expect = (x - mu) @ vk @ vk.T + mu
    got = pca_reconstruct(x, k)
    assert torch.allclose(got, expect.to(got.dtype), atol=1e-4)
    # the centred reconstruction has rank k and differs from x
    assert torch.linalg.matrix_rank((got - got.mean(0)).double(), atol=1e-3) == k
    assert not torch.allclose(got, x.to(got.dtype), atol=1e-2)


@pytest.mark.parametrize("batch", [2, 10, 33])
def test_pca_identity_when_batch_at_most_k_plus_one(batch):
    x = torch.randn(batch, 64)
    assert torch.equal(pca_reconstruct(x, 32), x)


def test_pca_full_rank_reconstruction_is_exact():
    x = torch.randn(10, 64)  # rank of centred batch is 9 <= k
    assert torch.allclose(pca_reconstruct(x, 9), x, atol=1e-5)


def test_longclip_preset_uses_pca_and_smoothing_on_short_branch_only():
    torch.manual_seed(3)
    img, lng, sht = (F.normalize(torch.randn(48, 64), dim=-1) for _ in range(3))
    scale = torch.tensor(math.log(100.0))
    loss = DualGranularityLoss.preset("longclip")
    assert loss.pca_dim == 32 and loss.label_smoothing == 0.1
    l_long, l_short = loss(img, lng, sht, scale)
    assert l_long.item() == pytest.approx(contrastive_loss(img, lng, scale, label_smoothing=0.1).item())
    expect_short = contrastive_loss(pca_reconstruct(img, 32), sht, scale, label_smoothing=0.1)
    assert l_short.item() == pytest.approx(expect_short.item())
    no_pca = contrastive_loss(img, sht, scale, label_smoothing=0.1)
    assert l_short.item() != pytest.approx(no_pca.item())
    dg = DualGranularityLoss.preset("dgtrs")
    assert dg.pca_dim is None and dg.label_smoothing == 0.0


def test_gradient_flows_to_features_and_logit_scale():
    img = F.normalize(torch.randn(5, 8), dim=-1).requires_grad_()
    txt = F.normalize(torch.randn(5, 8), dim=-1).requires_grad_()
    scale = torch.tensor(1.0, requires_grad=True)
    sum(DualGranularityLoss(pca_dim=2)(img, txt, txt, scale)).backward()
    for t in (img, txt, scale):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_bad_input_errors():
    with pytest.raises(ValueError, match="same"):
        contrastive_loss(torch.randn(3, 4), torch.randn(2, 4), torch.tensor(0.0))
    with pytest.raises(ValueError, match="preset"):
        DualGranularityLoss.preset("nope")
    with pytest.raises(ValueError, match="label_smoothing"):
        DualGranularityLoss(label_smoothing=1.5)
