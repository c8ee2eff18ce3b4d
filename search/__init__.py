"""Search strategies, the bilevel optimizer, fit_supernet, results, export and plots.

`__all__` is the documented surface: what `fit_supernet` and its companions take and return.
Internals (the epoch loop `search.bilevel_search.BilevelSearch`, the history recorder
`search.history.AlphaHistory`) stay importable from their modules.
"""

from . import zero_cost
from .architecture_plot import plot_architecture
from .bilevel import BilevelConfig, BilevelOptimizer
from .confidence import UndecidedError, UndecidedWarning
from .evolution import evolve
from .fit import fit_supernet, seed_everything
from .loggers import CSVLogger, Logger, TensorBoardLogger
from .pareto import pareto_front, plot_pareto
from .perturbation import PerturbationSettings
from .plots import plot_alpha_heatmap, plot_alpha_trajectories, plot_alpha_trajectory_groups
from .result import SearchResult
from .settings import CostSettings, ExecutionSettings, LoggingSettings, ResilienceSettings, SelectionSettings
from .strategies import STRATEGIES, Strategy, get_strategy
from .strategies.early_stopping import EarlyStopping

__all__ = [
    "BilevelConfig",
    "BilevelOptimizer",
    "CostSettings",
    "CSVLogger",
    "EarlyStopping",
    "ExecutionSettings",
    "Logger",
    "LoggingSettings",
    "PerturbationSettings",
    "ResilienceSettings",
    "STRATEGIES",
    "SearchResult",
    "SelectionSettings",
    "Strategy",
    "TensorBoardLogger",
    "UndecidedError",
    "UndecidedWarning",
    "evolve",
    "fit_supernet",
    "get_strategy",
    "pareto_front",
    "plot_alpha_heatmap",
    "plot_alpha_trajectories",
    "plot_alpha_trajectory_groups",
    "plot_architecture",
    "plot_pareto",
    "seed_everything",
    "zero_cost",
]
