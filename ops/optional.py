"""OptionalOp: an op or its bypass (HANNAH's `OptionalOp`), a two-option ChoiceOp."""

from __future__ import annotations

from typing import Optional

from supernet import ChoiceOp, IntScalarParameter, Op, Parameter

from .elementwise import Identity


class OptionalOp(ChoiceOp):
    """`OptionalOp(op, switch=None)(x)`: option 0 runs `op` (an uncalled op or a block), option 1
    bypasses it (the identity). The switch defaults to an IntScalarParameter(0, 1) named "choice"."""

    def __init__(self, op: Op, switch: Optional[Parameter] = None) -> None:
        if switch is None:
            switch = IntScalarParameter(min=0, max=1, name="choice")
        super().__init__(op, Identity(), switch=switch)
