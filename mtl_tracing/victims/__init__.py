"""Victims: multitask models and their trainers (the Trainer protocol and its driver).

Submodules are imported on use (``from mtl_tracing.victims import mtl``): flax and optax are
only imported by the code that trains.
"""
