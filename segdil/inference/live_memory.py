"""Peak bytes of the tensors a block of code creates: the memory probe of the inference engine."""

from __future__ import annotations

import weakref

import torch


class LiveTensorBytes(torch.utils._python_dispatch.TorchDispatchMode):
    """Peak bytes of the storages of tensors created inside the block and still alive (views and
    in-place results of one storage count once)."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # the probe never runs compiled; torch's wrap would import torch._dynamo (1.5-3 s) on first use

    def __init__(self):
        super().__init__()
        self.refs: dict[int, list[int]] = {}  # storage pointer -> [tensors alive, bytes]
        self.current = 0
        self.peak = 0

    def _release(self, key: int) -> None:
        entry = self.refs.get(key)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            self.current -= entry[1]
            del self.refs[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in torch.utils._pytree.tree_leaves(out):
            if not isinstance(tensor, torch.Tensor) or tensor.device.type == "meta":
                continue
            storage = tensor.untyped_storage()
            key = storage.data_ptr()
            if key == 0:
                continue
            entry = self.refs.get(key)
            if entry is None:
                entry = self.refs[key] = [0, storage.nbytes()]
                self.current += entry[1]
                self.peak = max(self.peak, self.current)
            entry[0] += 1
            weakref.finalize(tensor, self._release, key)
        return out
