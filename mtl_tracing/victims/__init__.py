"""Victims: multitask models and their trainers (the ``Trainer`` protocol and its driver
``fit``), one registry of trainers (:mod:`~mtl_tracing.victims.registry`).

Lazy (:mod:`mtl_tracing._lazy`): ``mtl-tracing --help`` reads the trainer registry, so the
names below load on first use (flax and optax are imported only by the code that trains).
The MAML victim is :mod:`~mtl_tracing.victims.maml`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mtl_tracing._lazy import attach

if TYPE_CHECKING:
    from mtl_tracing.victims.accounting import calibrate_noise, clt_mu, dpsgd_epsilon
    from mtl_tracing.victims.dp import DPConfig, DPSGDTrainer
    from mtl_tracing.victims.encoder_mtl import EncoderMTLTrainer
    from mtl_tracing.victims.gmrf import DecentralizedGMRFTrainer, GMRFConfig, GMRFTrainer
    from mtl_tracing.victims.model import MultitaskModel
    from mtl_tracing.victims.mtl import MTLTrainer, MTLTrainerBase, train
    from mtl_tracing.victims.optim import TrainConfig, make_optimizer
    from mtl_tracing.victims.registry import TRAINERS, TrainerEntry
    from mtl_tracing.victims.registry import build as build_trainer
    from mtl_tracing.victims.robust import PGDConfig, RobustTrainer
    from mtl_tracing.victims.trainer import Checkpoint, Fit, Trainer, fit, fit_checkpoints

__all__ = [
    "TRAINERS",
    "Checkpoint",
    "DecentralizedGMRFTrainer",
    "DPConfig",
    "DPSGDTrainer",
    "EncoderMTLTrainer",
    "Fit",
    "GMRFConfig",
    "GMRFTrainer",
    "MTLTrainer",
    "MTLTrainerBase",
    "MultitaskModel",
    "PGDConfig",
    "RobustTrainer",
    "TrainConfig",
    "Trainer",
    "TrainerEntry",
    "build_trainer",
    "calibrate_noise",
    "clt_mu",
    "dpsgd_epsilon",
    "fit",
    "fit_checkpoints",
    "make_optimizer",
    "train",
]

__getattr__, __dir__ = attach(__name__, __file__)
