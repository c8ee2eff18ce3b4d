"""Search strategies, the bilevel optimizer, fit_supernet, results, export and plots."""
from .architecture_plot import plot_architecture
from .bilevel import BilevelConfig, BilevelOptimizer
from .bilevel_search import BilevelSearch
from .evolution import evolve
from .confidence import UndecidedError, UndecidedWarning
from .fit import fit_supernet, seed_everything
from .history import AlphaHistory
from .pareto import pareto_front, plot_pareto
from .plots import plot_alpha_heatmap, plot_alpha_trajectories
from .result import SearchResult
from .strategies import STRATEGIES, Strategy, get_strategy
from .strategies.early_stopping import EarlyStopping
from . import zero_cost

__all__ = [
    "AlphaHistory", "BilevelConfig", "BilevelSearch", "EarlyStopping", "BilevelOptimizer", "evolve", "STRATEGIES", "SearchResult", "Strategy", "fit_supernet",
    "UndecidedError", "UndecidedWarning", "get_strategy", "pareto_front", "plot_alpha_heatmap", "plot_architecture", "plot_alpha_trajectories",
    "plot_pareto", "seed_everything", "zero_cost",
]
