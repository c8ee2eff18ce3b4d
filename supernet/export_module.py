"""ExportedModule: one architecture as a plain nn.Module running generated torch code.

`export_module(graph)` turns a discretized graph into a module whose layers sit at their op ids
(state_dict keys are the weight ids, as in the executors) and whose `forward` is the straight-line
code of `export_code.generate`: `forward(self, x)` for a single input, so the module scripts
(`torch.jit.script`), exports (`torch.export`, `torch.onnx.export`) and prints its layers by id.
As in torch.fx, every module gets a class of its own (TorchScript compiles methods per class), and
pickling one rebuilds it from its code and weights (which needs this library at load time; see
`standalone` for a file that needs only torch).
"""

from __future__ import annotations

import hashlib
import linecache
from typing import Any, Optional

import torch

from .basic_executor import BasicExecutor
from .executor import container
from .export_code import ExportCode, LayerSpec, generate
from .graph import topological_order, weight_tensors
from .node import Node


class Layer(torch.nn.Module):
    """One op of an exported architecture: holds the op's weights, prints as the op with its attributes."""

    def __init__(
        self, op: str, attributes: str = "", parameters: Optional[dict] = None, buffers: Optional[dict] = None
    ) -> None:
        super().__init__()
        self.op = op
        self.attributes = attributes
        for name, shape in (parameters or {}).items():
            self.register_parameter(name, torch.nn.Parameter(torch.empty(shape)))
        for name, shape in (buffers or {}).items():
            self.register_buffer(name, torch.empty(shape))

    def _get_name(self) -> str:
        return self.op

    def extra_repr(self) -> str:
        weights = [f"{name}={list(t.shape)}" for name, t in [*self._parameters.items(), *self._buffers.items()]]
        return ", ".join(([self.attributes] if self.attributes else []) + weights)


class ArchitectureModule(torch.nn.Module):
    """Base of exported architectures: prints its layers by id in execution order, as nn.Sequential does."""

    def __repr__(self) -> str:
        lines = [f"  ({name}): {layer!r}" for name, layer in self.named_modules() if isinstance(layer, Layer)]
        return self._get_name() + "(\n" + "\n".join(lines) + "\n)"


class OpCall(Layer):
    """A layer whose op declares no torch code: runs the op itself (needs this library)."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__(spec.op, spec.attributes, *_shapes(spec))
        self.call = spec.call
        self.layer_id = spec.id

    def forward(self, *args: torch.Tensor) -> Any:
        return self.call.compute(*args, training=self.training)

    def __prepare_scriptable__(self) -> "OpCall":
        # torch.jit.script asks every submodule first: say what is missing, not TorchScript's
        # "can't take variable number of arguments" about generated code
        raise TypeError(
            f"op {self.layer_id} ({self.op}) declares no torch code (`Op.source`), so its architecture cannot be "
            "scripted (torch.jit.script); give the op a `source` method (torch.export and ONNX export trace it as it is)"
        )


class ExportedModule(ArchitectureModule):
    """A fixed architecture as an nn.Module (see the module docstring). `code`: the source of
    `forward`; `export_code`: inputs, layers and code; `output_node`: the graph it was made from."""

    __jit_unused_properties__ = ["code"]

    def __new__(cls, *args: Any, **kwargs: Any) -> "ExportedModule":
        base = next(t for t in cls.__mro__ if not getattr(t, "_per_instance", False))
        own = type(
            base.__name__,
            (base,),
            {"__module__": base.__module__, "__qualname__": base.__qualname__, "_per_instance": True},
        )
        return super().__new__(own)

    def __init__(self, code: ExportCode, output_node: Optional[Node] = None) -> None:
        super().__init__()
        for spec in code.layers:
            layer = OpCall(spec) if spec.call is not None else Layer(spec.op, spec.attributes, *_shapes(spec))
            holder, leaf = container(self, spec.id), spec.id.rpartition(".")[2]
            if hasattr(holder, leaf):
                raise ValueError(f"layer id {spec.id} clashes with an existing attribute or layer")
            holder.add_module(leaf, layer)
        self.export_code = code
        self.output_node = output_node
        type(self).forward = _compile(code.forward)

    @property
    def code(self) -> str:
        """The Python source of `forward`."""
        return self.export_code.forward

    def _get_name(self) -> str:
        return "ExportedModule"

    def __reduce__(self) -> tuple:
        return _rebuild, (self.export_code, self.output_node, self.state_dict(), self.training)


def export_module(
    output: Node, seed: Optional[int] = None, state: Optional[dict[str, torch.Tensor]] = None
) -> ExportedModule:
    """The ExportedModule of the discretized graph ending at `output`: weights initialised as a
    `BasicExecutor(output, seed)` initialises them, or cut from `state` (a supernet's state dict,
    by weight id, as `GraphExecutor.load_shared_state` cuts them)."""
    code = generate(output)
    executor = BasicExecutor(output, seed=seed)
    if state is not None:
        executor.load_shared_state(state)
    module = ExportedModule(code, output)
    with torch.no_grad():
        for tensor in weight_tensors(topological_order(output)):
            target = module.get_parameter(tensor.id) if tensor.trainable else module.get_buffer(tensor.id)
            target.copy_(executor.weight(tensor))
    return module


def _shapes(spec: LayerSpec) -> tuple[dict, dict]:
    parameters = {w.name: w.shape for w in spec.weights if w.trainable}
    buffers = {w.name: w.shape for w in spec.weights if not w.trainable}
    return parameters, buffers


def _compile(source: str) -> Any:
    """The function `source` defines, with its text registered in linecache (as torch.fx does) so
    that TorchScript and tracebacks can read it."""
    filename = f"<exported architecture {hashlib.sha1(source.encode()).hexdigest()[:12]}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    namespace: dict[str, Any] = {"torch": torch, "F": torch.nn.functional}
    exec(compile(source, filename, "exec"), namespace)
    return namespace["forward"]


def _rebuild(
    code: ExportCode, output_node: Optional[Node], state: dict[str, torch.Tensor], training: bool
) -> ExportedModule:
    module = ExportedModule(code, output_node)
    module.load_state_dict(state)
    return module.train(training)
