"""The check a mixing executor makes before it sums the options of its ChoiceOps.

The language accepts options of different output shapes (dynamic depth, a stride-2 option beside
Identity): one-path executors run whichever the switch selects. A weighted sum of options needs
one shape, so an executor that mixes refuses, when it is built, every ChoiceOp whose options can
never agree on it for any parameter values, naming the ChoiceOp, the axis and the shapes.
"""

from __future__ import annotations

from typing import Iterable

from .choice import ChoiceOp, describe_shapes, mixing_problem

#: who can search options of different shapes, for the refusals: every weight-sharing strategy
#: (the one-path SPOS and GDAS too) trains inside one SupernetExecutor, whose shared weights, plan
#: and evaluation mix every option, so none of them can
ONE_PATH_ONLY = (
    "every fit_supernet strategy runs in this executor, the one-path ones (spos, fairnas, gdas) too, "
    "so none can search it as it is: give every option the same output shape (for embedded_vision_net, "
    "search.spaces.fix_for_mixing), or search it one path at a time, without weight sharing "
    "(sample() each architecture and train it with BasicExecutor)"
)


def check_mixable(choices: Iterable[ChoiceOp]) -> None:
    """Raise ValueError for the first ChoiceOp whose options can never have one output shape."""
    for choice in choices:
        shapes = [option.shape() for option in choice.operands]
        names = choice.option_names()
        if len({len(s) for s in shapes}) != 1:
            shown = ", ".join(f"{n}: {len(s)} axes" for n, s in zip(names, shapes))
            raise ValueError(
                f"ChoiceOp {choice.id}: options of different rank cannot be mixed ({shown}); {ONE_PATH_ONLY}"
            )
        problem = mixing_problem(shapes, names)
        if problem:
            raise ValueError(
                f"ChoiceOp {choice.id}: options must have equal output shapes to be mixed, got "
                f"{describe_shapes(shapes, names)}, and they never agree ({problem}); a SupernetExecutor "
                f"sums them, and {ONE_PATH_ONLY}"
            )
