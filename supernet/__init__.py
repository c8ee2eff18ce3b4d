"""supernet core: the search-space language (graph IR, parameters, expressions) and its executors."""
from .basic_executor import BasicExecutor
from .choice import ChoiceOp
from .discretize import describe, discretize
from .executor import GraphExecutor
from .active_parameters import get_active_parameters
from .conditions import Condition, check_conditions, condition_report, graph_conditions, violated
from .expression import Ceil, Constant, Expression, Floor, Int, lazy
from .groups import Groups
from .graph import get_nodes, topological_order
from .node import Node, Op, Tensor
from .parameters import CategoricalParameter, FloatScalarParameter, IntScalarParameter, Parameter, SubsetParameter
from .scope import scope, search_space
from .traits import OpTraits
from .mixture import Mixture, SoftmaxMixture
from .supernet_executor import SupernetExecutor

__all__ = [
    "BasicExecutor", "CategoricalParameter", "Ceil", "ChoiceOp", "Expression", "FloatScalarParameter",
    "Floor", "GraphExecutor", "IntScalarParameter", "Node", "Op", "OpTraits", "Parameter", "Tensor", "get_nodes",
    "lazy", "scope", "search_space", "topological_order", "SupernetExecutor", "Mixture",
    "SoftmaxMixture", "discretize", "describe",
    "Condition", "Constant", "Groups", "Int", "SubsetParameter", "check_conditions", "condition_report",
    "get_active_parameters", "graph_conditions", "violated",
]
