"""`@search_space` and `@scope`: the nodes created inside a decorated function get ids under
`<function>_<k>.` (see `naming` for the id scheme)."""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

from .naming import entered
from .node import Node
from .space_inputs import record_space_inputs

F = TypeVar("F", bound=Callable[..., Any])


def _scoped(function: F, check_output: bool) -> F:
    @functools.wraps(function)
    def run_in_scope(*args: Any, **kwargs: Any) -> Any:
        inputs = [a for a in (*args, *kwargs.values()) if isinstance(a, Node)]
        with entered(function.__name__, inputs):
            out = function(*args, **kwargs)
        if check_output and not isinstance(out, Node):
            raise TypeError(f"search space {function.__name__!r} must return its output node, got {type(out).__name__}")
        if check_output:
            record_space_inputs(out, function.__name__, inputs)  # checked by executors (space_inputs)
        return out

    return run_in_scope  # type: ignore[return-value]


def scope(function: F) -> F:
    """Decorate a block function: nodes created inside get ids under `<function>_<k>.`"""
    return _scoped(function, check_output=False)


def search_space(function: F) -> F:
    """Decorate the function that builds a whole space and returns its output node."""
    return _scoped(function, check_output=True)
