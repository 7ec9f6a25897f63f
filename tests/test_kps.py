"""KPS invariants (Long-CLIP, Zhang et al. 2024, section 3.1) for several (L, keep, ratio), and the naive baseline."""
import pytest
import torch

from dgtrs_lib import kps_length, linear_stretch_positional_embedding, stretch_positional_embedding

CASES = [(77, 20, 4), (32, 8, 4), (16, 4, 2), (10, 0, 3), (5, 3, 5)]


@pytest.mark.parametrize("L,keep,ratio", CASES)
def test_kps_invariants(L, keep, ratio):
    pe = torch.randn(L, 6, dtype=torch.float64)
    out = stretch_positional_embedding(pe, keep=keep, ratio=ratio)
    assert out.shape == (ratio * L - (ratio - 1) * keep, 6) == (kps_length(L, keep, ratio), 6)
    assert out.dtype == pe.dtype
    assert torch.equal(out[:keep], pe[:keep])                       # preserved rows, bit-exact
    for p in range(keep, L):                                         # every source row lands exactly
        assert torch.allclose(out[keep + ratio * (p - keep)], pe[p])
    for j in range(L - keep - 1):                                    # rows between lie on the segment
        for t in range(ratio):
            expect = (1 - t / ratio) * pe[keep + j] + (t / ratio) * pe[keep + j + 1]
            assert torch.allclose(out[keep + ratio * j + t], expect)
    last = out[-ratio:]                                              # extrapolation of the last difference
    for t in range(ratio):
        assert torch.allclose(last[t], pe[-1] + (t / ratio) * (pe[-1] - pe[-2]))


def test_kps_248_for_clip():
    assert stretch_positional_embedding(torch.randn(77, 512)).shape == (248, 512)


def test_kps_rejects_bad_arguments():
    with pytest.raises(ValueError, match="keep"):
        stretch_positional_embedding(torch.randn(10, 4), keep=9)
    with pytest.raises(ValueError, match="2-D"):
        stretch_positional_embedding(torch.randn(10))
    with pytest.raises(ValueError, match="ratio"):
        stretch_positional_embedding(torch.randn(10, 4), keep=2, ratio=0)


def test_linear_stretch_moves_early_positions_kps_does_not():
    pe = torch.randn(77, 16)
    lin = linear_stretch_positional_embedding(pe, 248)
    kps = stretch_positional_embedding(pe)
    assert lin.shape == kps.shape == (248, 16)
    assert torch.equal(kps[:20], pe[:20])
    assert not torch.allclose(lin[:20], pe[:20])
    # open_clip's resize_text_pos_embed is the same naive operation
    from open_clip.model import resize_text_pos_embed

    state = {"positional_embedding": pe.clone()}
    class Stub(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.positional_embedding = torch.nn.Parameter(torch.zeros(248, 16))
    resize_text_pos_embed(state, Stub())
    assert torch.allclose(state["positional_embedding"], lin, atol=1e-6)
