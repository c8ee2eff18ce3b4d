"""What bf16 rounding may do to a supernet's forward and backward pass, for the differential suite's bf16 mode.

Two tools, both used from outside the engine (the plans under test are not changed by them):

- `MatchedKinks`: ReLU and max-pooling are exact in any precision, but their derivative jumps where
  their input crosses a kink (ReLU at 0, a max-pooling window's argmax). An input within bf16's
  rounding error of a kink may fall on either side in two plans that both round correctly, and the
  gradient behind it then differs by the whole gradient at that element (measured: 23% of a
  convolution's gradient from one element at +5e-7 in one plan and -2e-3 in the other, float32
  -8e-4). Inside `installed()`, the float32 run records every ReLU's mask and every max-pooling's
  argmax per node (`recording`), and every other run takes those decisions: all runs differentiate
  the same piece of the piecewise-smooth function, so what is left between them is rounding.
- `RandomRounding`: a dispatch mode that moves every bfloat16 result of an arithmetic aten op, in
  the forward and the backward pass, by a random amount of up to one unit in the last place (random
  rounding, as in Monte Carlo arithmetic / CADNA). The distance of such a run from the float32 run
  measures how far bf16 rounding can take each tensor of this computation, including where one bf16
  run happens to keep an exact cancellation of float32 (measured: a Linear bias gradient of exactly
  0 in the reference's bf16 run, 1 ulp of its summands, 9.8e-4, in the optimised plan's).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

#: bf16's machine epsilon: a random-rounding perturbation spans one ulp either way
BF16_EPSILON = 2.0**-7

#: ops whose bf16 result is exact (a copy, a selection, a sign test): random rounding leaves them alone
_EXACT = frozenset(
    {
        "clone",
        "copy_",
        "cat",
        "stack",
        "relu",
        "threshold_backward",
        "max_pool1d_with_indices",
        "max_pool2d_with_indices",
        "max_pool2d_with_indices_backward",
        "gather",
        "scatter",
        "scatter_add",
        "constant_pad_nd",
        "where",
        "zeros_like",
        "ones_like",
        "fill_",
        "zero_",
        "new_zeros",
        "new_empty",
        "empty_like",
        "slice_backward",
        "select_backward",
        "index",
        "index_put_",
        "contiguous",
    }
)


class MatchedKinks:
    """ReLU masks and max-pooling argmaxes of a float32 run, replayed in other runs of one pass."""

    def __init__(self) -> None:
        self.decisions: dict[str, torch.Tensor] = {}
        self.recording = False
        self.replayed = 0  # decisions taken from the float32 run (for tests and reports)

    @contextlib.contextmanager
    def record(self) -> Iterator[None]:
        """Inside: the pass records its decisions (forgetting those of the pass before)."""
        self.decisions, self.recording = {}, True
        try:
            yield
        finally:
            self.recording = False

    @contextlib.contextmanager
    def installed(self) -> Iterator["MatchedKinks"]:
        """ops.Relu and ops.MaxPooling computing through this object (class-level: plans are unchanged)."""
        from ops import MaxPooling, Relu
        from supernet.plan import ChannelsLastGradient

        originals = {Relu: Relu.compute, MaxPooling: MaxPooling.compute}
        own = {cls: "compute" in vars(cls) for cls in originals}
        kinks = self

        def relu(node: Any, x: torch.Tensor, *, training: bool, groups: Optional[int] = None) -> Any:
            if kinks.recording:
                kinks.decisions[node.id] = (x > 0).detach()
            mask = kinks.decisions.get(node.id)
            if kinks.recording or mask is None or mask.shape != x.shape:
                return originals[Relu](node, x, training=training, groups=groups)
            kinks.replayed += 1
            return x * mask.to(x.dtype)

        def max_pool(node: Any, x: torch.Tensor, *, training: bool, groups: Optional[int] = None) -> Any:
            if kinks.recording:
                out, index = _max_pool_indices(node, x)
                kinks.decisions[node.id] = index
                return out
            index = kinks.decisions.get(node.id)
            out = originals[MaxPooling](node, x, training=training, groups=groups)
            out_format = (
                torch.channels_last if out.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
            )
            if index is None or index.shape != out.shape:
                return out
            kinks.replayed += 1
            if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
                # gather's backward is contiguous: keep the gradient's layout that of max-pooling's own backward
                x = ChannelsLastGradient.apply(x)
                return x.flatten(2).gather(2, index.flatten(2)).view(index.shape).contiguous(memory_format=out_format)
            return x.flatten(2).gather(2, index.flatten(2)).view(index.shape)

        Relu.compute, MaxPooling.compute = relu, max_pool
        try:
            yield self
        finally:
            for cls, compute in originals.items():
                if own[cls]:
                    cls.compute = compute
                else:
                    del cls.compute


def _max_pool_indices(node: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from supernet import lazy

    pool = {3: F.max_pool1d, 4: F.max_pool2d}[x.dim()]
    kernel = lazy(node.kernel_size)
    stride = kernel if node.stride is None else lazy(node.stride)
    out, index = pool(x, kernel, stride, lazy(node.padding), return_indices=True)
    return out, index.detach()


class RandomRounding(TorchDispatchMode):
    """Every bfloat16 result of an inexact aten op times (1 + e), e uniform in +-BF16_EPSILON, then
    rounded to bfloat16 again: each such result moves by up to one ulp either way (drawn from
    `generator`, not torch's global one, so that sampled gates draw as in the other runs)."""

    def __init__(self, generator: torch.Generator) -> None:
        super().__init__()
        self.generator = generator

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: Optional[dict] = None) -> Any:
        out = func(*args, **(kwargs or {}))
        schema = func._schema
        if func.__name__.split(".")[0] in _EXACT or any(
            r.alias_info is not None and not r.alias_info.is_write for r in schema.returns
        ):
            return out  # exact, or a view sharing its input's storage
        with torch.no_grad():
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor) and t.dtype == torch.bfloat16 and t.numel():
                    noise = torch.rand(t.shape, generator=self.generator).mul_(2 * BF16_EPSILON).sub_(BF16_EPSILON)
                    t.copy_(t.float() * noise.add_(1.0))
        return out
