"""One executor of a space that runs any of its architectures at initialisation, with given
weight values and taps on intermediate values: what the zero-cost proxies measure through.

The weights are a `BasicExecutor`'s, built once (seeded, so every architecture of one seed sees
the same initial weights, as in NASLib's benchmark of a space at one seed). A proxy runs the
active path on its own copies of them (absolute values, Gaussian redraws, leaves it takes
gradients of), so the executor's weights and BatchNorm statistics are never modified.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

import torch

from supernet import BasicExecutor, ChoiceOp, Node, Op, Tensor, lazy

Tap = Callable[[Op, list, torch.Tensor], None]


def is_layer_weight(tensor: Tensor) -> bool:
    """A convolution's or linear layer's weight: trainable, with at least two axes (NASLib's
    `mode="param"` layers; biases and normalisation affines are one-axis)."""
    return tensor.trainable and len(tensor.shape()) >= 2


def normalises(op: Op) -> bool:
    """Whether the op normalises with statistics it keeps (BatchNorm declares its running ones)."""
    return bool(op.running_statistics)


class Probe:
    """A space's BasicExecutor, run one architecture at a time (set by the space's parameters)."""

    def __init__(self, space: Node, seed: int) -> None:
        self.space = space
        self.executor = BasicExecutor(space, seed=seed)
        self.executor.train()
        inputs = self.executor.input_nodes
        if len(inputs) != 1:
            raise ValueError(
                f"zero-cost proxies score spaces of one input; this space has {len(inputs)}: {[t.id for t in inputs]}"
            )
        self.input = inputs[0]

    def input_shape(self, batch_size: int) -> tuple[int, ...]:
        """The declared input shape with `batch_size` on the batch axis ("N")."""
        shape = list(lazy(self.input.shape()))
        if "N" in self.input.axis:
            shape[self.input.axis.index("N")] = batch_size
        return tuple(shape)

    def nodes(self) -> list[Node]:
        return self.executor.active_nodes()

    def weights(self) -> dict[Tensor, torch.Tensor]:
        """The active path's weight Tensors -> detached copies of their current slices."""
        return {
            n: self.executor.weight(n).detach().clone()
            for n in self.nodes()
            if isinstance(n, Tensor) and n.role == "weight"
        }

    def run(
        self,
        x: torch.Tensor,
        weights: Mapping[Tensor, torch.Tensor],
        *,
        normalise: bool = True,
        tap: Optional[Tap] = None,
    ) -> torch.Tensor:
        """The current architecture's output on `x` with `weights` (from `weights()`, possibly
        transformed), every op in training mode (BatchNorm on batch statistics); `normalise=False`
        passes the input of every statistics-keeping op through unchanged (NASLib's `bn=False`).
        `tap(op, operand values, output)` sees every op that runs."""
        values: dict[Node, Any] = {self.input: x}
        for node in self.nodes():
            if isinstance(node, Tensor):
                if node.role == "weight":
                    values[node] = weights[node]
            elif isinstance(node, ChoiceOp):
                values[node] = values[node.operands[node.active_index()]]
            else:
                args = [values[o] for o in node.operands]
                if not normalise and normalises(node):
                    out = args[0]
                else:
                    node.training = True
                    out = node.forward(*args)
                values[node] = out
                if tap is not None:
                    tap(node, args, out)
        return values[self.executor.output_node]
