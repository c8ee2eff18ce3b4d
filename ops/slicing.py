"""Slicing one axis: `x[..., start:stop:step, ...]` (e.g. DARTS's FactorizedReduce shift `x[:, :, 1:, 1:]`)."""

from __future__ import annotations

from typing import Any, Optional

from supernet import Op, OpTraits, lazy


class Slice(Op):
    """`Slice(axis, start=0, stop=None, step=1)(x)`: the entries `start:stop:step` of `axis` (not
    the batch axis). Negative `start`/`stop` count from the end, as in Python. A view: no MACs."""

    traits = OpTraits(pure=True, layout_agnostic=True)

    def __init__(self, axis: int, start: int = 0, stop: Optional[int] = None, step: int = 1) -> None:
        super().__init__(axis=axis, start=start, stop=stop, step=step)

    def _axis(self) -> int:
        rank = len(self.operands[0].shape())
        return self.axis + rank if self.axis < 0 else self.axis

    def check(self) -> None:
        rank = len(self.operands[0].shape())
        if not -rank <= self.axis < rank or self._axis() == 0:
            raise ValueError(
                f"{self.id}: cannot slice axis {self.axis} of a {rank}-D input (the batch axis or out of range)"
            )
        if not isinstance(self.step, int) or self.step < 1:
            raise ValueError(f"{self.id}: step must be a positive int, got {self.step!r}")
        if lazy(self.shape_fun()[self._axis()]) < 1:
            raise ValueError(
                f"{self.id}: slice {self.start}:{self.stop}:{self.step} of axis {self.axis} "
                f"of shape {lazy(self.operands[0].shape())} is empty"
            )

    def _bound(self, value: Optional[int], size: Any, default: Any) -> Any:
        if value is None:
            return default
        return size + value if value < 0 else value

    def shape_fun(self) -> tuple:
        shape = self.operands[0].shape()
        axis = self._axis()
        size = shape[axis]
        start = self._bound(self.start, size, 0)
        stop = self._bound(self.stop, size, size)
        # the length of range(start, stop, step) for 0 <= start <= stop <= size
        length = (stop - start + self.step - 1) // self.step
        return (*shape[:axis], length, *shape[axis + 1 :])

    def flops(self) -> Any:
        return 0

    def _forward_implementation(self, x):
        index = [slice(None)] * x.dim()
        index[self._axis()] = slice(self.start, self.stop, self.step)
        return x[tuple(index)]

    def source(self, args, out):
        bound = "" if self.step == 1 else f":{self.step}"
        part = f"{'' if self.start in (0, None) else self.start}:{'' if self.stop is None else self.stop}{bound}"
        index = [":"] * len(self.operands[0].shape())
        index[self._axis()] = part
        return f"{out} = {args[0]}[{', '.join(index)}]"
