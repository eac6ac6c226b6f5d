"""HaDES behaviour distillation: evolve tiny synthetic datasets that teach policies by BC."""

from jaxbc.hades.core import (
    VARIANTS,
    GenerationInfo,
    Hades,
    HadesConfig,
    HadesState,
    Summary,
    balanced_labels,
    episode_returns,
    hades_preset,
    make_hades,
    solution_template,
)
from jaxbc.hades.experiment import OUTPUT_FILES, hades_experiment
from jaxbc.hades.outputs import (
    distilled_data,
    distilled_dataset,
    plot_dataset,
    save_curves,
    state_image,
)
from jaxbc.hades.run import HadesRun, run_hades, run_seconds
from jaxbc.hades.strategies import (
    FITNESS_SHAPINGS,
    HillClimber,
    Strategy,
    algorithm_names,
    fitness_shaping_fn,
    make_strategy,
    paper_strategy_options,
    softmax_rank_weights,
)

__all__ = [
    "FITNESS_SHAPINGS",
    "OUTPUT_FILES",
    "VARIANTS",
    "GenerationInfo",
    "Hades",
    "HadesConfig",
    "HadesRun",
    "HadesState",
    "HillClimber",
    "Strategy",
    "Summary",
    "algorithm_names",
    "balanced_labels",
    "distilled_data",
    "distilled_dataset",
    "episode_returns",
    "fitness_shaping_fn",
    "hades_experiment",
    "hades_preset",
    "make_hades",
    "make_strategy",
    "paper_strategy_options",
    "plot_dataset",
    "run_hades",
    "run_seconds",
    "save_curves",
    "softmax_rank_weights",
    "solution_template",
    "state_image",
]
