"""bf16 inference: the bf16 network, the memory probe's per-pixel slope and the guard's decisions."""

import pytest
import torch
from torch import nn

from segdil.inference.engine import InferenceOptions, Predictor
from segdil.inference.precision import (
    MIN_PAIR_PIXELS,
    MarginErrors,
    bf16_network,
    calibration_boxes,
    expected_flips,
    image_expected_flips,
    margin_errors,
    top2,
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


def test_calibration_crops_spread_over_the_image_aligned_to_the_multiple():
    boxes = calibration_boxes(1024, 2048, 32)
    assert len(boxes) == 9 and {(h, w) for _, _, h, w in boxes} == {(64, 64)}
    assert all(y % 32 == 0 and x % 32 == 0 and 0 <= y <= 1024 - 64 and 0 <= x <= 2048 - 64 for y, x, _, _ in boxes)
    assert len({y for y, _, _, _ in boxes}) == 3 and len({x for _, x, _, _ in boxes}) == 3
    small = calibration_boxes(40, 50, 1)  # smaller than a crop: the whole image
    assert set(small) == {(0, 0, 40, 50)}


def test_expected_flips_from_calibrated_errors():
    errors = MarginErrors(torch.tensor([0.0, 0.1, 0.2, 0.3]))  # no pair of its own: every pixel pooled
    assert expected_flips(errors, torch.tensor([10.0, 10.0]), torch.tensor([1, 1])) == 0.0
    assert expected_flips(errors, torch.tensor([0.15]), torch.tensor([1])) == pytest.approx(0.5 * 2 / 4)


def test_top2_gives_the_margin_and_the_unordered_class_pair():
    logits = torch.tensor([[[1.0]], [[4.0]], [[3.5]]])  # (C=3, 1, 1): top classes 1 then 2
    margins, pairs = top2(logits)
    assert margins.tolist() == [0.5]
    swapped = top2(logits[[0, 2, 1]])[1]  # classes 1 and 2 exchanged: the same unordered pair
    assert pairs.tolist() == swapped.tolist() == [1 * 3 + 2]


def test_each_class_pair_is_compared_with_its_own_errors_and_rare_pairs_with_all():
    # calibration: classes 0/1 tied on many pixels with tiny bf16 errors; 0/2 on few with large ones
    n_small, n_rare = 3 * MIN_PAIR_PIXELS, MIN_PAIR_PIXELS // 2
    reference = torch.zeros(1, 3, 1, n_small + n_rare)
    reference[0, 0], reference[0, 1, 0, :n_small] = 1.0, 0.9
    reference[0, 2, 0, n_small:] = 0.9
    fast = reference.clone()
    fast[0, 1, 0, :n_small] += 0.001
    fast[0, 2, 0, n_small:] += 0.5
    errors = margin_errors(reference, fast)
    assert set(errors.by_pair) == {0 * 3 + 1} and len(errors.pooled) == n_small + n_rare
    # an image pixel of pair 0/1 with margin 0.01: none of that pair's errors exceed it, though
    # the pooled ones (a quarter of them 0.5) would say an eighth of a flip
    assert expected_flips(errors, torch.tensor([0.01]), torch.tensor([1])) == 0.0
    assert expected_flips(MarginErrors(errors.pooled), torch.tensor([0.01]), torch.tensor([1])) == pytest.approx(0.5 * n_rare / (n_small + n_rare))
    # pair 0/2 was seen too rarely for its own errors: the pooled ones decide
    assert expected_flips(errors, torch.tensor([0.01]), torch.tensor([2])) == pytest.approx(0.5 * n_rare / (n_small + n_rare))


def test_estimate_equals_a_pixel_by_pixel_count_over_each_pairs_errors():
    torch.manual_seed(1)
    reference = torch.randn(2, 4, 24, 30) + torch.tensor([1.0, 0.5, 0.0, -0.5]).view(1, 4, 1, 1)  # pairs seen unevenly
    fast = reference + 0.2 * torch.randn_like(reference)  # moves margins and sometimes the runner-up
    errors = margin_errors(reference, fast)
    assert 0 < len(errors.by_pair) < 6
    # brute force: every calibration pixel's pair and error, straight from the definitions
    order = fast.argsort(dim=1, descending=True)[:, :2]
    a, b = order[:, 0].flatten().tolist(), order[:, 1].flatten().tolist()
    difference = (fast - reference).permute(0, 2, 3, 1).reshape(-1, 4)
    calibration = [(frozenset((i, j)), abs(float(d[i] - d[j]))) for i, j, d in zip(a, b, difference)]
    counts = {}
    for pair, _ in calibration:
        counts[pair] = counts.get(pair, 0) + 1
    image = torch.randn(4, 9, 11)
    expected = 0.0
    for y in range(9):
        for x in range(11):
            top = image[:, y, x].argsort(descending=True)[:2].tolist()
            margin = float(image[top[0], y, x] - image[top[1], y, x])
            pair = frozenset(top)
            own = [e for p, e in calibration if p == pair] if counts.get(pair, 0) >= MIN_PAIR_PIXELS else [e for _, e in calibration]
            expected += 0.5 * sum(e > margin for e in own) / len(own)
    assert image_expected_flips(errors, image) == pytest.approx(expected / 99, rel=1e-6)


def test_many_kept_pairs_and_edge_margins_match_a_count_per_pair():
    # 12 classes, a dozen pairs kept apart, pair ids past the largest kept one, and margins of 0,
    # -0.0 and infinity: the one-pass search counts as a comparison of floats does
    torch.manual_seed(3)
    by_pair = {p: (torch.rand(int(torch.randint(1, 50, ()))) * 0.3).sort().values for p in torch.randperm(100)[:12].tolist()}
    pooled = torch.rand(500).sort().values * 0.3
    errors = MarginErrors(pooled, by_pair)
    pairs = torch.randint(0, 144, (5000,))
    pairs[:200] = torch.tensor(list(by_pair)).repeat(17)[:200]
    margins = torch.rand(5000) * 0.3
    margins[:3] = torch.tensor([0.0, -0.0, torch.inf])
    margins[3:6] = by_pair[pairs[3].item()][0] if pairs[3].item() in by_pair else pooled[0]  # ties do not count as larger
    expected = 0.0
    for margin, pair in zip(margins.tolist(), pairs.tolist()):
        own = by_pair.get(pair, pooled).tolist()
        expected += sum(e > margin for e in own) / len(own)
    assert expected_flips(errors, margins, pairs) == pytest.approx(0.5 * expected / 5000, rel=1e-9)


def test_a_pair_is_kept_apart_from_min_pair_pixels_on():
    for seen, kept in ((MIN_PAIR_PIXELS, True), (MIN_PAIR_PIXELS - 1, False)):
        reference = torch.zeros(1, 3, 1, seen + MIN_PAIR_PIXELS)
        reference[0, 0] = 1.0
        reference[0, 1, 0, :seen] = 0.5  # pair 0/1 on ``seen`` pixels, pair 0/2 on the rest
        reference[0, 2, 0, seen:] = 0.5
        errors = margin_errors(reference, reference + 0.01)
        assert (1 in errors.by_pair) == kept and 2 in errors.by_pair


def test_one_class_cannot_flip():
    logits = torch.randn(1, 1, 8, 8)
    margins, _ = top2(logits)
    assert torch.isinf(margins).all()
    errors = margin_errors(logits, logits + 1.0)
    assert image_expected_flips(errors, logits[0]) == 0.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_guard_on_cuda_compares_errors_and_margins_on_one_device():
    predictor = Predictor(_net().cuda(), "cuda", InferenceOptions(precision="auto", fuse=False))
    if not predictor.guard:
        pytest.skip("this GPU computes no bf16 natively: precision auto is fp32 and unguarded")
    assert predictor.logits(torch.randn(2, 3, 96, 128)).shape == (2, 3, 96, 128)


def test_image_estimate_in_row_chunks_equals_the_whole_image_estimate():
    torch.manual_seed(0)
    reference = torch.randn(1, 4, 30, 40)
    errors = margin_errors(reference, reference + 0.3 * torch.randn_like(reference))
    assert errors.by_pair and len(errors.by_pair) < 6  # some pairs on their own, some pooled
    logits = torch.randn(4, 37, 23)
    whole = expected_flips(errors, *top2(logits))
    assert whole > 0 and whole != expected_flips(MarginErrors(errors.pooled), *top2(logits))
    for chunk_pixels in (1, 23, 100, 10**6):
        assert image_expected_flips(errors, logits, chunk_pixels) == pytest.approx(whole, rel=1e-9)


class _Tied(nn.Module):
    """Two classes whose logits differ by ``gap`` everywhere: near-tied for a tiny gap."""

    def __init__(self, gap: float):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 1, 3, padding=1))
        self.gap = gap

    def forward(self, x):
        f = self.body(x)
        return torch.cat([f * 3, f * 3 + self.gap], 1)


@pytest.mark.parametrize("gap, bf16_images", [(1e-3, 0), (50.0, 2)])
def test_guard_runs_near_tied_images_in_fp32_at_once_and_confident_ones_in_bf16(gap, bf16_images):
    torch.manual_seed(0)
    predictor = Predictor(_Tied(gap).eval(), "cpu", InferenceOptions(precision="auto", fuse=False))
    if not predictor.guard:
        pytest.skip("this CPU computes no bf16 natively: precision auto is fp32 and unguarded")
    whole = []
    real = predictor._logits
    predictor._logits = lambda images, amp, *contexts: whole.append((len(images), amp)) or real(images, amp, *contexts)
    logits = predictor.logits(torch.randn(2, 3, 96, 128))
    assert logits.shape == (2, 2, 96, 128) and logits.dtype == torch.float32
    assert sum(n for n, amp in whole if amp) == bf16_images
    assert predictor.fp32_fallbacks == 2 - bf16_images
    assert sum(n for n, amp in whole if not amp) == 2 - bf16_images  # no image ran whole in both precisions
