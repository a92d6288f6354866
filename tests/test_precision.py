"""bf16 inference: the bf16 network, the memory probe's per-pixel slope and the guard's rule (near-tied
images re-run in fp32, clear ones kept in bf16, the run settling on fp32 once most needed it)."""

import pytest
import torch
from torch import nn

from segdil.inference.engine import InferenceOptions, Predictor
from segdil.inference.precision import (
    NEAR_TIE,
    RERUN_SHARE,
    SETTLE_AFTER,
    bf16_network,
    near_tied_share,
    needs_fp32,
    settle_on_fp32,
)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 1)).eval()


def test_bf16_network_stores_bf16_weights_and_leaves_the_source_alone():
    net = _net()
    fast = bf16_network(net)
    assert all(p.dtype == torch.bfloat16 for p in fast.parameters())
    assert all(p.dtype == torch.float32 for p in net.parameters())
    x = torch.randn(2, 3, 20, 24)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = fast(x).float()
    with torch.no_grad():
        reference = net(x)
    assert torch.allclose(out, reference, atol=0.05, rtol=0.05) and not torch.equal(out, reference)


class _FixedAllocation(nn.Module):
    """A convolution plus a 64 MB tensor made on every forward, whatever the input's size."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        scratch = torch.ones(16 * 2**20)
        return self.conv(x) + scratch[0]


def test_memory_probe_counts_only_what_grows_with_the_image():
    plain = Predictor(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)).eval(), "cpu", InferenceOptions(precision="fp32", fuse=False))
    fixed = Predictor(_FixedAllocation().eval(), "cpu", InferenceOptions(precision="fp32", fuse=False))
    # 64 MB over a 96x96 probe would be ~7 KB per pixel; the slope sees only the activations
    assert plain.bytes_per_pixel() <= fixed.bytes_per_pixel() < 2 * plain.bytes_per_pixel() < 200


def _two_classes(gaps: torch.Tensor, top: float = 10.0) -> torch.Tensor:
    """Logits ``(2, 1, N)``: class 0 at ``top``, class 1 ``gaps`` below it (the image's scale is ``top``)."""
    return torch.stack([torch.full_like(gaps, top), top - gaps])[:, None]


def test_near_tied_pixels_are_those_whose_top_two_gap_is_below_near_tie_times_the_scale():
    threshold = NEAR_TIE * 10.0  # the mean largest |logit| is 10
    gaps = torch.tensor([0.0, 0.5, 0.9, 1.5, 3.0]) * threshold  # three below the threshold, two above
    assert near_tied_share(_two_classes(gaps)) == pytest.approx(3 / 5)
    third = torch.cat([_two_classes(gaps), torch.full((1, 1, 5), -5.0)])  # a third class below both: the same top two
    assert near_tied_share(third) == pytest.approx(3 / 5)


def test_the_rule_does_not_change_when_logits_are_scaled():
    torch.manual_seed(0)
    logits = torch.randn(4, 30, 40)
    share = near_tied_share(logits)
    assert 0 < share < 1
    for factor in (0.01, 100.0):
        assert near_tied_share(logits * factor) == pytest.approx(share)


def test_an_image_is_rerun_above_rerun_share_of_near_tied_pixels_only():
    pixels = 10_000
    at_limit = round(RERUN_SHARE * pixels)
    for near, rerun in ((at_limit, False), (at_limit + 1, True), (0, False)):
        gaps = torch.full((pixels,), 5.0)
        gaps[:near] = 0.01  # below NEAR_TIE times the scale (10)
        assert needs_fp32(_two_classes(gaps)) == rerun


def test_share_in_row_chunks_equals_the_whole_image_share():
    torch.manual_seed(0)
    logits = torch.randn(5, 37, 23)
    whole = near_tied_share(logits, chunk_pixels=10**6)
    assert whole > 0
    for chunk_pixels in (1, 23, 100):
        assert near_tied_share(logits, chunk_pixels) == whole


def test_one_class_cannot_flip():
    assert near_tied_share(torch.zeros(1, 8, 8)) == 0.0 and not needs_fp32(torch.zeros(1, 8, 8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_guard_runs_on_cuda():
    predictor = Predictor(_net().cuda(), "cuda", InferenceOptions(precision="auto", fuse=False))
    if not predictor.guard:
        pytest.skip("this GPU computes no bf16 natively: precision auto is fp32 and unguarded")
    assert predictor.logits(torch.randn(2, 3, 96, 128)).shape == (2, 3, 96, 128)


class _Tied(nn.Module):
    """Two classes whose logits differ by ``gap`` plus the image's second channel: near-tied where
    both are tiny, clear where either is large."""

    def __init__(self, gap: float = 0.0):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 1, 3, padding=1))
        self.gap = gap

    def forward(self, x):
        f = self.body(x) * 3
        return torch.cat([f, f + self.gap + x[:, 1:2]], 1)


def _guarded(model: nn.Module) -> tuple[Predictor, list[tuple[int, bool]]]:
    """A guarded predictor and the (images, bf16) of each whole-batch prediction it makes."""
    predictor = Predictor(model.eval(), "cpu", InferenceOptions(precision="auto", fuse=False))
    if not predictor.guard:
        pytest.skip("this CPU computes no bf16 natively: precision auto is fp32 and unguarded")
    runs: list[tuple[int, bool]] = []
    real = predictor._logits
    predictor._logits = lambda images, amp: runs.append((len(images), amp)) or real(images, amp)
    return predictor, runs


@pytest.mark.parametrize("gap, fp32_images", [(1e-3, 2), (50.0, 0)])
def test_near_tied_images_are_rerun_in_fp32_and_clear_ones_kept_in_bf16(gap, fp32_images):
    torch.manual_seed(0)
    predictor, runs = _guarded(_Tied(gap))
    images = torch.randn(2, 3, 96, 128)
    images[:, 1] = 0.0
    logits = predictor.logits(images)
    assert logits.shape == (2, 2, 96, 128) and logits.dtype == torch.float32
    assert runs == [(2, True)] + ([(fp32_images, False)] if fp32_images else [])
    assert predictor.fp32_fallbacks == fp32_images


def test_in_a_batch_only_the_near_tied_image_is_rerun_and_keeps_its_fp32_logits():
    torch.manual_seed(0)
    predictor, runs = _guarded(_Tied())
    images = torch.randn(3, 3, 64, 64)
    images[:, 1] = torch.tensor([50.0, 0.0, 50.0])[:, None, None]  # the middle image is tied everywhere
    logits = predictor.logits(images)
    assert runs == [(3, True), (1, False)] and predictor.fp32_fallbacks == 1
    del predictor._logits
    bf16, fp32 = predictor._logits(images, True), predictor._logits(images[1:2], False)
    assert torch.equal(logits[[0, 2]], bf16[[0, 2]]) and torch.equal(logits[1:2], fp32)


def test_once_most_checked_images_were_rerun_the_rest_go_straight_to_fp32():
    torch.manual_seed(0)
    predictor, runs = _guarded(_Tied())
    images = torch.randn(1, 3, 64, 64)
    images[:, 1] = 0.0  # tied everywhere: every checked image is re-run
    first = predictor.logits(images)
    for _ in range(3):
        later = predictor.logits(images)
    assert runs == [(1, True), (1, False), (1, True), (1, False), (1, False), (1, False)]
    assert predictor.fp32_fallbacks == 4 and predictor.guard_checked == SETTLE_AFTER == 2
    assert torch.equal(first, later)  # fp32 either way


def test_the_guard_keeps_trying_bf16_while_at_most_half_the_images_are_rerun():
    torch.manual_seed(0)
    predictor, runs = _guarded(_Tied())
    tied, clear = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    tied[:, 1], clear[:, 1] = 0.0, 50.0
    for images in (tied, clear, clear, tied):
        predictor.logits(images)
    assert runs == [(1, True), (1, False), (1, True), (1, True), (1, True), (1, False)]
    assert predictor.fp32_fallbacks == 2 and predictor.guard_checked == 4


@pytest.mark.parametrize("checked, rerun, settles", [(1, 1, False), (2, 1, False), (2, 2, True), (4, 3, True), (10, 5, False)])
def test_settle_on_fp32_needs_enough_images_and_more_than_half_rerun(checked, rerun, settles):
    assert settle_on_fp32(checked, rerun) == settles
