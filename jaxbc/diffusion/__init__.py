"""Diffusion models of expert (state, action) pairs for Diffusion Model-Augmented BC (DBC)."""

from jaxbc.diffusion.experiment import diffusion_experiment
from jaxbc.diffusion.model import NoiseNet
from jaxbc.diffusion.schedules import SCHEDULES, Schedule, make_schedule, schedule_from_betas
from jaxbc.diffusion.train import (
    DiffusionConfig,
    DiffusionModel,
    check_continuous,
    load,
    make_diffusion_train,
    noise_prediction_error,
    noise_prediction_loss,
    q_sample,
    sample,
    sample_timesteps,
    save,
)

__all__ = [
    "SCHEDULES",
    "DiffusionConfig",
    "DiffusionModel",
    "NoiseNet",
    "Schedule",
    "check_continuous",
    "diffusion_experiment",
    "load",
    "make_diffusion_train",
    "make_schedule",
    "noise_prediction_error",
    "noise_prediction_loss",
    "q_sample",
    "sample",
    "sample_timesteps",
    "save",
    "schedule_from_betas",
]
