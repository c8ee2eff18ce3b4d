"""The graph IR: `Tensor` leaves and `Op` nodes linked by `operands` and `users` (as in torch.fx).

A search space is the set of nodes reachable from its output node; there is no graph object.
Ops are created with their attributes, `Op(**attributes)`, and join the graph when called on their
operands, `op(*operands)`, which also gives them their id in the active scope and registers every
parameter found in their attributes. Ops own the Tensors after their first `n_inputs` operands
(weights, biases, running statistics): those are named `<op id>.<tensor name>`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional, Sequence

from .axis_role import AxisRole, checked_roles, default_roles
from .conditions import as_condition
from .expression import Expression, walk
from .parameters import Parameter
from .naming import next_id, qualify
from .parametrization import parametrization, sample, set_parametrization
from .traits import OpTraits


class Node:
    """Base of `Tensor` and `Op`: a named vertex with operands (inputs) and users (consumers)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.id = name
        self.operands: list[Node] = []
        self.users: list[Node] = []
        self.params: dict[str, Parameter] = {}  # parameters this node uses, by local key
        self.conditions: list = []  # constraints stated here (`cond`; see supernet.conditions)

    def shape(self) -> tuple:
        raise NotImplementedError

    def size(self, axis: int) -> Any:
        return self.shape()[axis]

    def _register(self, value: Any, fallback_name: str) -> None:
        """Give every not-yet-registered parameter inside `value` an id under this node's id."""
        for item in walk(value):
            if not isinstance(item, Parameter):
                continue
            if item.id is None:
                item.name = item.name or fallback_name
                key = item.name
                if key in self.params and self.params[key] is not item:
                    raise ValueError(
                        f"duplicate parameter id {self.id}.{key}: two different parameters named "
                        f"{key!r} are used by node {self.id}; give one another name"
                    )
                item.id = f"{self.id}.{key}"
                self.params[key] = item
            else:
                self.params.setdefault(item.id, item)

    def cond(self, condition: Expression, allowed_params: Optional[Sequence[Parameter]] = None) -> "Node":
        """State a constraint (HANNAH's `cond`): a symbolic expression that must evaluate true,
        kept in the graph and checked by sampling and search; `allowed_params` are the
        parameters a solver may change to satisfy it (None: any). Returns this node."""
        self.conditions.append(as_condition(condition, f"node {self.id}", allowed_params))
        return self

    # graph-level conveniences, implemented in parametrization.py
    def parametrization(self, flatten: bool = True) -> dict:
        """Every parameter of the graph ending here, by id (nested by id segments if not flat)."""
        return parametrization(self, flatten=flatten)

    def sample(self, seed: Optional[int] = None) -> dict[str, Any]:
        """Sample every parameter of the graph ending here; returns id -> value."""
        return sample(self, seed=seed)

    def set_parametrization(self, values: dict[str, Any]) -> None:
        """Set parameters by id; unknown ids or out-of-domain values raise before anything changes."""
        set_parametrization(self, values)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id})"


class Tensor(Node):
    """Data at a point of the graph: an input (fed at run time) or a weight (owned by an op).

    `shape` entries are ints, parameters or expressions; `axis` names each entry. The batch axis
    `N` is free at run time (its role is `AxisRole.BATCH`). `axis_roles` declares what each axis is
    for (`AxisRole`, e.g. "batch" or "kernel"; None: a plain axis); without it, the op that owns a
    weight declares its roles (`Op.weight_axis_roles`). `grad=None` means trainable when used as a weight; `grad=False` makes
    a weight a buffer (frozen, or statistics the op updates itself). `init` names the initial
    values of a weight: "kaiming_uniform" (default), "uniform_fan_in", "zeros", "ones", "normal".
    """

    def __init__(
        self,
        name: str,
        shape: Sequence[Any],
        axis: Optional[Sequence[str]] = None,
        grad: Optional[bool] = None,
        init: str = "kaiming_uniform",
        dtype: Any = None,
        axis_roles: Optional[Sequence[Any]] = None,
    ) -> None:
        super().__init__(name)
        self.id = qualify(name)
        self._shape = tuple(shape)
        self.axis = tuple(axis) if axis is not None else tuple(f"d{i}" for i in range(len(self._shape)))
        if len(self.axis) != len(self._shape):
            raise ValueError(
                f"Tensor {self.id}: shape {self._shape} has {len(self._shape)} entries but axis {self.axis} has {len(self.axis)}"
            )
        for size, axis_name in zip(self._shape, self.axis):
            if isinstance(size, bool) or not isinstance(size, (int, Expression)):
                raise TypeError(
                    f"Tensor {self.id}: size of axis {axis_name!r} must be an int or expression, got {size!r}"
                )
            if isinstance(size, int) and size < 0:
                raise ValueError(f"Tensor {self.id}: size of axis {axis_name!r} is negative ({size})")
        self._declared_roles = axis_roles is not None
        rank = len(self._shape)
        self.axis_roles: tuple[Optional[AxisRole], ...] = (
            checked_roles(axis_roles, rank, f"Tensor {self.id}") if axis_roles is not None else default_roles(self.axis)
        )
        self.grad = grad
        self.init = init
        self.dtype = dtype
        self.owner: Optional[Op] = None  # the op whose weight this is
        self.role: Optional[str] = None  # "data" or "weight", fixed at first use

    def shape(self) -> tuple:
        return self._shape

    @property
    def trainable(self) -> bool:
        return self.grad is not False

    def _use_as(self, role: str, op: "Op") -> None:
        if self.role is not None and self.role != role:
            raise ValueError(f"Tensor {self.id} is used as {self.role} and now as {role} by {op.id}")
        if self.role is None:
            self.role = role
            if role == "weight":
                self.owner = op
                self.id = f"{op.id}.{self.name}"
                if not self._declared_roles:
                    position = next(i for i, o in enumerate(op.operands) if o is self)
                    declared = op.weight_axis_roles(position)
                    self.axis_roles = checked_roles(declared, len(self._shape), f"weight {self.id}")
            for size, axis_name in zip(self._shape, self.axis):
                self._register(size, axis_name)
        self.users.append(op)


class Op(Node):
    """An operator. Subclasses implement `_forward_implementation(*args)` and `shape_fun()`.

    `n_inputs` is how many leading operands are data; the remaining operands are Tensors the op
    owns (weights). Executors run an op through `compute(*values, training=..., groups=...)`, which
    passes the run mode on as arguments; `training` on the op is only the mode of direct calls
    (`op.forward(...)`), never written by an executor.
    """

    n_inputs: ClassVar[Optional[int]] = None  # None: every operand is data
    min_inputs: ClassVar[int] = 1
    #: names of owned buffers the op estimates itself in training mode as running averages,
    #: x <- (1 - momentum) * x + momentum * batch value with its `momentum` attribute (BatchNorm's
    #: mean and variance); re-estimated for a sub-architecture by `search.recalibration`
    running_statistics: ClassVar[tuple[str, ...]] = ()
    #: what the execution plan may assume about this op (see `supernet.traits`); nothing by default
    traits: ClassVar[OpTraits] = OpTraits()
    #: the run-mode keywords `_forward_implementation` takes (see `compute`): "training" (batch
    #: statistics, dropout), "groups" (a grouped op run with another number of channel groups)
    mode_arguments: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **attributes: Any) -> None:
        super().__init__(type(self).__name__)
        self.attributes = dict(attributes)
        for key, value in attributes.items():
            if hasattr(Op, key) or key in ("name", "id", "operands", "users", "params", "attributes", "training"):
                raise ValueError(f"{type(self).__name__}: attribute name {key!r} is reserved by Op; choose another")
            setattr(self, key, value)
        self.training = True
        self._called = False
        self._shape: Optional[tuple] = None

    def __call__(self, *operands: Node) -> "Op":
        kind = type(self).__name__
        if self._called:
            raise RuntimeError(f"{kind} {self.id} is already part of a graph; create a new {kind}(...) for each use")
        for i, operand in enumerate(operands):
            if not isinstance(operand, Node):
                what = type(operand).__name__
                shown = (
                    f"of shape {tuple(operand.shape)}"
                    if hasattr(operand, "shape") and hasattr(operand, "dtype")
                    else repr(operand)[:80]
                )
                raise TypeError(
                    f"{kind}: operand {i} is {what} {shown}, not a graph node "
                    "(a supernet Tensor or an op output); declare inputs as supernet.Tensor and feed data at run time"
                )
        n_in = len(operands) if self.n_inputs is None else min(self.n_inputs, len(operands))
        if n_in < self.min_inputs:
            raise TypeError(f"{kind} needs at least {self.min_inputs} data operand(s), got {n_in}")
        weights = operands[n_in:]
        for w in weights:
            if not isinstance(w, Tensor):
                raise TypeError(f"{kind}: operand {operands.index(w)} must be a weight Tensor, got {w!r}")
        names = [w.name for w in weights]
        if len(set(names)) != len(names):
            raise ValueError(f"{kind}: weight tensors need distinct names, got {names}")
        self.id = next_id(self.name, operands)
        self.operands = list(operands)
        try:  # validate before joining: a rejected op leaves no trace in its operands' users
            self.check()
        except Exception:
            self.operands, self.id = [], self.name
            raise
        self._called = True
        for key, value in self.attributes.items():
            self._register(value, key)
        for i, operand in enumerate(operands):
            if isinstance(operand, Tensor):
                operand._use_as("data" if i < n_in else "weight", self)
            else:
                operand.users.append(self)
        return self

    @property
    def inputs(self) -> list[Node]:
        """The data operands (not the owned weights)."""
        n_in = len(self.operands) if self.n_inputs is None else self.n_inputs
        return self.operands[:n_in]

    def check(self) -> None:
        """Validate operands at graph construction; raise with this op's id on error."""

    def shape(self) -> tuple:
        if self._shape is None:
            self._shape = tuple(self.shape_fun())
        return self._shape

    def shape_fun(self) -> tuple:
        """Symbolic output shape; the default keeps the first operand's shape."""
        return self.operands[0].shape()

    def flops(self) -> Any:
        """Multiply-accumulates for one sample (batch axis excluded), symbolic in shapes and
        parameters. Ops that compute override it; the default is free (views, identity)."""
        return 0

    def source(self, args: Sequence[str], out: str) -> Optional[str]:
        """Python statements that compute this op with torch alone (`torch`, `F` for
        torch.nn.functional) and assign the result to `out`, for exported code: `args` are the
        expressions of the operands (data, then weights), attributes are taken at the parameters'
        current values. Temporaries start with `out`. None (the default): the op has no such code,
        and an exported module calls the op itself."""
        return None

    def accepts_channels_last(self) -> bool:
        """Whether this op, as configured, may run on channels-last inputs (its class's
        `layout_agnostic` trait unless it overrides this for configurations it must not)."""
        return self.traits.layout_agnostic

    def weight_axis_roles(self, position: int) -> Optional[tuple[Optional[AxisRole], ...]]:
        """The roles of the axes of the owned weight at operand `position` (None: no axis has one),
        for weights that do not declare their own (`Tensor(axis_roles=...)`): e.g. a convolution's kernel axes."""
        return None

    def channel_groups(self) -> Optional[Any]:
        """How many groups this op splits its input channels into (a grouped convolution), or None
        for an op that does not group them; only a grouped op takes `groups=` in `compute`."""
        return None

    def float32_under_cpu_autocast(self, channels: int, groups: Optional[int] = None) -> bool:
        """Whether this op, as configured, on an input of `channels` channels (run with `groups`, as
        in `compute`), computes in float32 under CPU autocast: an op declares it where its CPU
        bfloat16 kernel is slower than the float32 one (docs/precision.md). False unless overridden."""
        return False

    def compute(self, *args: Any, training: bool, groups: Optional[int] = None) -> Any:
        """This op's output on the values `args` of its operands (data, then weights) in the run
        mode given: `training` (batch statistics and dropout follow it) and `groups` (a grouped op
        fed fewer channels, such as a depthwise convolution under partial channels, runs with this
        many groups; None: its own). The one way executors run an op: the mode reaches
        `_forward_implementation` as the keywords the op declares in `mode_arguments`."""
        mode: dict[str, Any] = {}
        if "training" in self.mode_arguments:
            mode["training"] = training
        if groups is not None:
            if "groups" not in self.mode_arguments:
                raise TypeError(
                    f"{type(self).__name__} {self.id}: groups={groups} given, but the op does not group "
                    f"channels (its mode_arguments are {self.mode_arguments})"
                )
            mode["groups"] = groups
        x = args[0] if args else None
        if (
            getattr(x, "is_cpu", False)
            and x.dim() > 1
            and _cpu_autocast_on()  # first: float32 runs never ask the op
            and self.float32_under_cpu_autocast(x.shape[1], groups)
        ):
            return _float32_under_cpu_autocast(self._forward_implementation, args, mode)
        return self._forward_implementation(*args, **mode)

    def has_own_implementation(self) -> bool:
        """Whether this instance carries its own `_forward_implementation` (a test wrapper, say):
        the plan then never merges, folds, recomputes or defers it."""
        return "_forward_implementation" in vars(self)

    def _forward_implementation(self, *args: Any, **mode: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no _forward_implementation")

    def forward(self, *args: Any) -> Any:
        """`compute` in this op's own `training` mode (a direct call, outside any executor)."""
        return self.compute(*args, training=self.training)


def _cpu_autocast_on() -> bool:
    import torch  # the graph IR itself does not need torch; values reaching `compute` are tensors

    return torch.is_autocast_enabled("cpu")


def _float32_under_cpu_autocast(implementation: Any, args: Sequence[Any], mode: dict[str, Any]) -> Any:
    """`implementation(*args, **mode)` in float32 with CPU autocast off (floating operands cast up,
    the output cast to autocast's dtype, as the op would have returned it under autocast)."""
    import torch

    with torch.autocast("cpu", enabled=False):
        up = [a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
        return implementation(*up, **mode).to(torch.get_autocast_dtype("cpu"))
