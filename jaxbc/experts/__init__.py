"""Experts: PPO trainer, presets, the committed zoo and expert save/load."""

from jaxbc.experts.demos import collect_demos, teacher
from jaxbc.experts.expert import Expert, load_expert, zoo_env_ids, zoo_table
from jaxbc.experts.ppo import PPOConfig, make_ppo, make_train
from jaxbc.experts.presets import PRESETS, preset
from jaxbc.experts.train import train_expert

__all__ = [
    "Expert",
    "PPOConfig",
    "PRESETS",
    "collect_demos",
    "load_expert",
    "make_ppo",
    "make_train",
    "preset",
    "teacher",
    "train_expert",
    "zoo_env_ids",
    "zoo_table",
]
