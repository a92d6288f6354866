"""Fold BatchNorm into the convolution before it, for inference.

In eval mode ``bn(conv(x))`` is an affine map per output channel, so it can be written into the
convolution's weight and bias. Pairs are found from the data flow, not from module order: each
module is traced with ``torch.fx``; where a module's own ``forward`` cannot be traced (it branches
on the input size, for instance), its children are traced instead. A pair is folded only when the
convolution's output feeds the BatchNorm and nothing else, and each of the two is called once.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import fx, nn


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every Conv2d→BatchNorm2d pair folded into the Conv2d
    (ConvTranspose2d→BatchNorm2d too), and the pairs the model declares in ``batchnorm_pairs``
    (a norm its tracer cannot see follow the conv, e.g. through a sum with another path).

    The folded BatchNorm layers are replaced by ``nn.Identity``; the input model is not changed.
    """
    model = copy.deepcopy(model).eval()
    for conv_name, bn_name in getattr(model, "batchnorm_pairs", ()):  # pairs a model declares
        if _foldable(model.get_submodule(conv_name), model.get_submodule(bn_name)):
            _fold_pair(model, conv_name, bn_name)
    _fold_module(model)
    return model


def fold_conv_bn(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.BatchNorm2d) -> None:
    """Write ``bn`` (its running statistics and affine parameters) into ``conv`` in place."""
    with torch.no_grad():
        var = bn.running_var.to(torch.float64)
        scale = torch.rsqrt(var + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight.to(torch.float64)
        shift = -bn.running_mean.to(torch.float64) * scale
        if bn.bias is not None:
            shift = shift + bn.bias.to(torch.float64)
        weight = conv.weight.to(torch.float64)
        if isinstance(conv, nn.ConvTranspose2d):  # weight: (in, out / groups, kh, kw)
            g = conv.groups
            weight = (weight.reshape(g, -1, *weight.shape[1:]) * scale.reshape(g, 1, -1, 1, 1)).reshape(weight.shape)
        else:
            weight = weight * scale.reshape(-1, 1, 1, 1)
        bias = shift if conv.bias is None else conv.bias.to(torch.float64) * scale + shift
        conv.weight.copy_(weight.to(conv.weight.dtype))
        if conv.bias is None:
            conv.bias = nn.Parameter(bias.to(device=conv.weight.device, dtype=conv.weight.dtype))
        else:
            conv.bias.copy_(bias.to(conv.bias.dtype))


def _fold_module(module: nn.Module) -> None:
    graph = _trace(module)
    if graph is None:
        for child in module.children():
            _fold_module(child)
        return
    for conv_name, bn_name in _conv_bn_pairs(module, graph):
        _fold_pair(module, conv_name, bn_name)


def _fold_pair(root: nn.Module, conv_name: str, bn_name: str) -> None:
    fold_conv_bn(root.get_submodule(conv_name), root.get_submodule(bn_name))
    _replace_submodule(root, bn_name, nn.Identity())


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    """A convolution and a BatchNorm with running statistics over its output channels."""
    return (
        isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d))
        and isinstance(bn, nn.BatchNorm2d)
        and bn.track_running_stats
        and bn.running_mean is not None
        and conv.out_channels == bn.num_features
    )


def _trace(module: nn.Module) -> fx.Graph | None:
    if isinstance(module, (nn.ModuleList, nn.ModuleDict)) or type(module).forward is nn.Module.forward:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fx.Tracer().trace(module)
    except Exception:  # anything untraceable: fall back to the children
        return None


def _conv_bn_pairs(root: nn.Module, graph: fx.Graph) -> list[tuple[str, str]]:
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(root.get_submodule(node.target), nn.BatchNorm2d):
            continue
        source = node.args[0] if node.args else None
        if not isinstance(source, fx.Node) or source.op != "call_module" or len(source.users) != 1:
            continue
        conv, bn = root.get_submodule(source.target), root.get_submodule(node.target)
        if _foldable(conv, bn) and calls[source.target] == 1 and calls[node.target] == 1:
            pairs.append((source.target, node.target))
    return pairs


def _replace_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)
