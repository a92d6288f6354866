import warnings

import pytest
import torch
from torch import nn

from segdil.inference.fuse import fold_batchnorm
from segdil.models import MODELS, create_model

# every family's tiny instance, plus an hdc with a stem (a conv-BN pair outside the blocks)
TINY = {name: (name, cls.tiny_args()) for name, cls in MODELS.items()}
TINY["hdc-stem"] = ("hdc", {**MODELS["hdc"].tiny_args(), "stem_width": 4})


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Statistics and affine parameters far from the identity, so that folding has work to do."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)
                if module.affine:
                    module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                    module.bias.copy_(torch.rand(n, generator=generator) - 0.5)
    return model.eval()


def count_bn(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def assert_same_output(a: torch.Tensor, b: torch.Tensor) -> None:
    scale = max(1.0, float(a.abs().max()))
    assert float((a - b).abs().max()) <= 1e-5 * scale


@pytest.mark.parametrize("case", sorted(TINY))
def test_folded_model_matches_and_has_no_batchnorm_left(case):
    name, args = TINY[case]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = randomize_bn(create_model(name, num_classes=3, **args))
    before = count_bn(model)
    x = torch.randn(2, 3, 48, 40)
    with torch.no_grad():
        expected = model(x)
        folded = fold_batchnorm(model)
        got = folded(x)
    assert before > 0 and count_bn(folded) == 0
    assert not folded.training
    assert_same_output(expected, got)
    # the input model is untouched
    assert count_bn(model) == before
    with torch.no_grad():
        assert torch.equal(model(x), expected)


def test_transposed_grouped_and_affine_free_pairs_fold():
    torch.manual_seed(0)
    model = randomize_bn(
        nn.Sequential(
            nn.ConvTranspose2d(6, 8, 4, stride=2, padding=1, groups=2),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 4, 3, groups=4, bias=False),
            nn.BatchNorm2d(4, affine=False),
        )
    )
    x = torch.randn(2, 6, 9, 11)
    with torch.no_grad():
        folded = fold_batchnorm(model)
        assert count_bn(folded) == 0
        assert_same_output(model(x), folded(x))


class ConvUsedTwice(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.bn_after_relu = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y + self.bn_after_relu(torch.relu(y))


def test_pairs_whose_conv_output_is_used_elsewhere_are_left_alone():
    torch.manual_seed(0)
    model = randomize_bn(ConvUsedTwice())
    x = torch.randn(1, 3, 12, 12)
    with torch.no_grad():
        folded = fold_batchnorm(model)
        assert count_bn(folded) == 2
        assert torch.equal(folded.conv.weight, model.conv.weight)
        assert_same_output(model(x), folded(x))
