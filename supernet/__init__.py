"""supernet core: the search-space language (graph IR, parameters, expressions) and its executors.

`__all__` is the documented surface, including the types the public calls take
(`PlanOptions` for `SupernetExecutor(optimize=...)`, `LatencyTable` for latency costs,
`ExportedModule` that `SearchResult.export()` returns).
"""

from .active_parameters import get_active_parameters
from .axis_role import AxisRole
from .basic_executor import BasicExecutor
from .choice import ChoiceOp
from .conditions import Condition, check_conditions, condition_report, graph_conditions, violated
from .discretize import check_architecture, describe, discretize
from .executor import GraphExecutor
from .export_module import ExportedModule
from .expression import Ceil, Constant, Expression, Floor, Int, lazy
from .graph import Graph, get_nodes, topological_order
from .groups import Groups
from .latency import LatencyTable
from .mixture import Mixture, Phase, SoftmaxMixture
from .node import Node, Op, Tensor
from .parameters import CategoricalParameter, FloatScalarParameter, IntScalarParameter, Parameter, SubsetParameter
from .plan_options import PlanOptions
from .scope import scope, search_space
from .supernet_executor import SupernetExecutor
from .traits import Affine, OpTraits

__all__ = [
    "Affine",
    "AxisRole",
    "BasicExecutor",
    "CategoricalParameter",
    "Ceil",
    "ChoiceOp",
    "Condition",
    "Constant",
    "ExportedModule",
    "Expression",
    "FloatScalarParameter",
    "Floor",
    "Graph",
    "GraphExecutor",
    "Groups",
    "Int",
    "IntScalarParameter",
    "LatencyTable",
    "Mixture",
    "Node",
    "Op",
    "OpTraits",
    "Parameter",
    "Phase",
    "PlanOptions",
    "SoftmaxMixture",
    "SubsetParameter",
    "SupernetExecutor",
    "Tensor",
    "check_architecture",
    "check_conditions",
    "condition_report",
    "describe",
    "discretize",
    "get_active_parameters",
    "get_nodes",
    "graph_conditions",
    "lazy",
    "scope",
    "search_space",
    "topological_order",
    "violated",
]
