"""The HDC memory saver (activation checkpointing per block) must change memory, not results.

Tolerances: the recomputation runs the same float32 kernels on the same inputs, so outputs must
agree to atol 1e-6 / rtol 1e-5 and gradients to atol 1e-5 / rtol 1e-4 (room for a different
summation order in the backward kernels); running statistics and ``num_batches_tracked`` must be
equal to atol 1e-7 / exactly. Compiled (``aot_eager``), buffers may differ by atol 1e-6 / rtol 1e-5
(the compiled BatchNorm reduces in another order).
"""

import warnings

import pytest
import torch
from torch import nn

from segdil.models import create_model

TINY = dict(widths=[8], rates=[1, 2, 5], blocks=2, num_classes=3)
OUT_TOL = dict(atol=1e-6, rtol=1e-5)
GRAD_TOL = dict(atol=1e-5, rtol=1e-4)


def twin_models(**extra):
    """A plain HDC net and one with the memory saver, holding the same weights."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = create_model("hdc", **TINY, **extra)
        saver = create_model("hdc", **TINY, memory_saver="checkpoint", **extra)
    saver.load_state_dict(plain.state_dict())
    return plain, saver


def train_step(model, x, target):
    model.train()
    out = model(x)
    nn.functional.cross_entropy(out, target).backward()
    return out.detach()


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_outputs_and_gradients_match_the_plain_model(memory_format):
    plain, saver = twin_models()
    plain, saver = plain.to(memory_format=memory_format), saver.to(memory_format=memory_format)
    x = torch.randn(2, 3, 24, 24).contiguous(memory_format=memory_format)
    target = torch.randint(0, 3, (2, 24, 24))
    torch.testing.assert_close(train_step(saver, x, target), train_step(plain, x, target), **OUT_TOL)
    for (name, p), (_, q) in zip(plain.named_parameters(), saver.named_parameters()):
        assert q.grad is not None, name
        torch.testing.assert_close(q.grad, p.grad, **GRAD_TOL, msg=lambda m, name=name: f"{name}: {m}")


def test_input_gradient_matches():
    plain, saver = twin_models()
    x = torch.randn(2, 3, 20, 20)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    plain.train()(xa).square().mean().backward()
    saver.train()(xb).square().mean().backward()
    torch.testing.assert_close(xb.grad, xa.grad, **GRAD_TOL)


def test_batchnorm_running_statistics_update_once_per_step():
    """Recomputing a block in backward must not update BatchNorm's running statistics a second time."""
    plain, saver = twin_models()
    x = torch.randn(2, 3, 24, 24)
    target = torch.randint(0, 3, (2, 24, 24))
    for _ in range(2):
        train_step(plain, x, target)
        train_step(saver, x, target)
    plain_state, saver_state = plain.state_dict(), saver.state_dict()
    stats = [k for k in plain_state if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert stats
    for key in stats:
        if key.endswith("num_batches_tracked"):
            assert int(saver_state[key]) == int(plain_state[key]) == 2, key
        else:
            torch.testing.assert_close(saver_state[key], plain_state[key], atol=1e-7, rtol=0, msg=lambda m, key=key: f"{key}: {m}")


def test_eval_and_no_grad_do_not_checkpoint():
    plain, saver = twin_models()
    x = torch.randn(1, 3, 16, 16)
    plain.eval(), saver.eval()
    torch.testing.assert_close(saver(x), plain(x), atol=0, rtol=0)
    plain.train(), saver.train()
    with torch.no_grad():
        torch.testing.assert_close(saver(x), plain(x), atol=0, rtol=0)
    torch.testing.assert_close(saver.state_dict()["blocks.0.layers.0.1.running_mean"], plain.state_dict()["blocks.0.layers.0.1.running_mean"], atol=0, rtol=0)


def saved_bytes(model, x):
    """Bytes of the tensors autograd keeps for backward outside checkpointed regions."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model.train()(x)
    return total


def test_memory_saver_keeps_far_less_for_backward():
    plain, saver = twin_models()
    x = torch.randn(2, 3, 32, 32)
    plain_bytes, saver_bytes = saved_bytes(plain, x), saved_bytes(saver, x)
    # plain: every conv input, BN input and ReLU output of both blocks; saver: only the head's input
    assert saver_bytes * 5 < plain_bytes, (saver_bytes, plain_bytes)


def test_compiled_memory_saver_matches_the_plain_model():
    """Under torch.compile the recomputation is part of the compiled backward; it must not replay buffer updates either."""
    plain, saver = twin_models()
    compiled = torch.compile(saver, backend="aot_eager")
    x = torch.randn(2, 3, 24, 24)
    target = torch.randint(0, 3, (2, 24, 24))
    plain.train(), saver.train()
    for _ in range(2):
        expected = plain(x)
        nn.functional.cross_entropy(expected, target).backward()
        out = compiled(x)
        nn.functional.cross_entropy(out, target).backward()
        torch.testing.assert_close(out.detach(), expected.detach(), **OUT_TOL)
    for (name, p), (_, q) in zip(plain.named_parameters(), saver.named_parameters()):
        torch.testing.assert_close(q.grad, p.grad, **GRAD_TOL, msg=lambda m, name=name: f"{name}: {m}")
    plain_state, saver_state = plain.state_dict(), saver.state_dict()
    for key in plain_state:
        torch.testing.assert_close(saver_state[key], plain_state[key], atol=1e-6, rtol=1e-5, msg=lambda m, key=key: f"{key}: {m}")


@pytest.mark.parametrize("configured", ["none", "checkpoint"])
def test_a_bench_variant_sets_the_saver_whatever_the_config_says(configured):
    from segdil.bench.variants import Variant, variant_model_args

    args = {"name": "hdc", "memory_saver": configured}
    assert variant_model_args(args, Variant())["memory_saver"] == "none"
    assert variant_model_args(args, Variant(memory_saver=True))["memory_saver"] == "checkpoint"
    assert "memory_saver" not in variant_model_args({"name": "fcn"}, Variant())
