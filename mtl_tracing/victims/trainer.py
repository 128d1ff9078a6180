"""The ``Trainer`` protocol and the one driver, :func:`fit`, that runs any trainer.

A trainer is a frozen (hashable) dataclass: it is a static argument of the compiled program, so
two equal trainers share one compilation. It defines five pure, traceable methods:

- ``init(key, data) -> state``: the initial training state (a pytree: params, optimiser state).
- ``batches(key, data) -> batch``: one epoch's schedule, a pytree whose leaves have a leading
  (steps,) axis (for Algorithm 3: a permutation of the T IN tasks cut into task minibatches).
- ``step(state, key, batch) -> (state, metrics)``: one optimiser step on one batch; ``metrics``
  is a dict of scalars (may be empty). ``key`` is the step's own key (DP noise, PGD starts...).
- ``evaluate(state, data) -> dict``: scalars recorded after every epoch (the history).
- ``embed(state, x) -> e``: the shared representation, (..., *F) -> (..., m), for the attacks.

and one static field, ``epochs``.

Keys. Run r uses ``run_key = fold_in(key, r)``, so its numbers do not depend on R. The driver
splits ``k_init, k_sched = split(run_key)``: ``init`` gets ``k_init``; epoch e's schedule gets
``fold_in(k_sched, e)``; the steps of epoch e get ``split(fold_in(k_sched, 2**31 + e), steps)``
(epochs < 2**31, so the two streams never meet).

Checkpoints. :func:`fit_checkpoints` trains the same runs with the same keys but stops at
chosen epochs, yielding the states there (one compiled program per distinct segment length;
``trainer.evaluate`` only at the checkpoints). A trainer whose states live on a device mesh
defines ``state_sharding() -> Sharding`` (optional): the states are constrained to it after
``init`` and after every segment, so every segment sees the same input shardings and equal
segments share one compiled program.

Traced fields (optional). A trainer may define ``split_traced() -> (static, values)``: a
canonical copy of itself with some fields replaced by placeholders, and those fields' values
as a pytree of arrays; and ``merge_traced(values) -> trainer`` on the copy, called inside the
compiled program with the traced values. :func:`fit` then compiles for ``static`` and passes
``values`` as arguments, so trainers differing only in those fields share one program (the
DP-SGD trainer's noise multiplier z: every epsilon, one compile).

Layouts over the R runs: ``"vmap"`` vmaps the runs inside each epoch (one program, one progress
tick per epoch); ``"loop"`` runs the single-run program R times (one compilation). ``"auto"``
takes ``"loop"`` on CPU backends, where ``benchmarks/bench_train.py`` measured it 1.4x faster
than ``vmap``, and ``"vmap"`` on accelerators. Both give the same numbers to float tolerance
(reduction order may differ; tested).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from mtl_tracing._validate import check_choice, check_int, check_key

__all__ = [
    "Trainer",
    "Fit",
    "Checkpoint",
    "LAYOUTS",
    "fit",
    "fit_checkpoints",
    "epoch_fn",
    "run_keys",
    "resolve_layout",
]

LAYOUTS = ("auto", "vmap", "loop")
_STEP_STREAM = 2**31  # fold_in offset of the step-key stream (see the module docstring)


@runtime_checkable
class Trainer(Protocol):
    """A multitask training algorithm; see the module docstring for the contract."""

    epochs: int

    def init(self, key: Array, data: Any) -> Any: ...

    def batches(self, key: Array, data: Any) -> Any: ...

    def step(self, state: Any, key: Array, batch: Any) -> tuple[Any, dict]: ...

    def evaluate(self, state: Any, data: Any) -> dict: ...

    def embed(self, state: Any, x: Array) -> Array: ...


class Fit(NamedTuple):
    """The result of :func:`fit`: final states and per-epoch history, leading (R,) axis."""

    state: Any  # pytree, leaves (R, ...)
    history: dict  # {name: (R, epochs)} from ``trainer.evaluate``
    step_metrics: dict  # {name: (R, epochs, steps)} from ``trainer.step``


class Checkpoint(NamedTuple):
    """One checkpoint of :func:`fit_checkpoints`, leading (R,) axis."""

    epoch: int  # epochs trained so far
    state: Any  # pytree, leaves (R, ...)
    history: dict  # {name: (R, checkpoints so far)}: ``trainer.evaluate`` at each checkpoint


def run_keys(key: Array, runs: int) -> Array:
    """(R,) run keys ``fold_in(key, r)``."""
    return jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.arange(runs))


def resolve_layout(layout: str) -> str:
    """``"auto"`` -> ``"loop"`` on CPU, ``"vmap"`` elsewhere; others unchanged.

    Measured (``benchmarks/bench_train.py``, T = 64, 20 epochs): on 2 CPU cores a loop over
    runs is ~1.4x faster than a vmap over them (XLA:CPU gains nothing from the wider batch and
    pays its memory traffic); on an H200 the vmap over R = 16 runs took 0.01 s against 0.13 s
    for the loop (12x: one wide kernel instead of R launches).
    """
    layout = check_choice("layout", layout, LAYOUTS)
    if layout == "auto":
        return "loop" if jax.default_backend() == "cpu" else "vmap"
    return layout


# Progress: compiled programs call this module-level function once per epoch; ``fit`` pushes
# its tqdm bar here for the duration of the call (no closure, hence no recompile).
_BARS: list = []


def _tick(epoch) -> None:
    del epoch
    if _BARS:
        _BARS[-1].update(1)


def epoch_fn(trainer, data, *, evaluate: bool = True):
    """Unchecked kernel: ``run_epoch(state, k_sched, epoch) -> (state, metrics, step_metrics)``.

    One run's epoch as :func:`fit` runs it (schedule, step keys, scan over steps, evaluate), for
    callers that stop at checkpoints (e.g. the real-data job) and must match ``fit``'s keys.
    ``evaluate=False`` skips ``trainer.evaluate`` (``metrics`` is ``{}``): the states are the
    same, for callers that evaluate only at their checkpoints.
    """

    def run_epoch(state, k_sched, epoch):
        batches = trainer.batches(jax.random.fold_in(k_sched, epoch), data)
        steps = jax.tree.leaves(batches)[0].shape[0]
        stream = jnp.asarray(epoch, jnp.uint32) + jnp.uint32(_STEP_STREAM)
        keys = jax.random.split(jax.random.fold_in(k_sched, stream), steps)

        def body(s, xs):
            batch, k = xs
            return trainer.step(s, k, batch)

        state, step_metrics = jax.lax.scan(body, state, (batches, keys))
        return state, (trainer.evaluate(state, data) if evaluate else {}), step_metrics

    return run_epoch


def _merged(trainer, traced):
    return trainer if traced is None else trainer.merge_traced(traced)


def _scan_epochs(run_epoch, state, k_sched, epochs: int, progress: bool):
    """``lax.scan`` of ``run_epoch`` over epochs 0..epochs-1: (state, history, step metrics)."""

    def epoch_body(state, epoch):
        state, metrics, step_metrics = run_epoch(state, k_sched, epoch)
        if progress:
            jax.debug.callback(_tick, epoch)
        return state, (metrics, step_metrics)

    state, (hist, steps) = jax.lax.scan(epoch_body, state, jnp.arange(epochs))
    return state, hist, steps


@functools.partial(jax.jit, static_argnames=("trainer", "runs", "progress"))
def _fit_vmap(trainer, keys, data, traced=None, *, runs: int, progress: bool):
    del runs
    trainer = _merged(trainer, traced)
    k_init, k_sched = jax.vmap(jax.random.split, out_axes=1)(keys)
    state = jax.vmap(trainer.init, in_axes=(0, None))(k_init, data)
    run_epoch = jax.vmap(epoch_fn(trainer, data), in_axes=(0, 0, None))
    state, hist, steps = _scan_epochs(run_epoch, state, k_sched, trainer.epochs, progress)
    move = functools.partial(jnp.moveaxis, source=0, destination=1)
    return state, jax.tree.map(move, hist), jax.tree.map(move, steps)


@functools.partial(jax.jit, static_argnames=("trainer", "progress"))
def _fit_one(trainer, key, data, traced=None, *, progress: bool):
    trainer = _merged(trainer, traced)
    k_init, k_sched = jax.random.split(key)
    state = trainer.init(k_init, data)
    return _scan_epochs(epoch_fn(trainer, data), state, k_sched, trainer.epochs, progress)


def fit(
    trainer: Trainer,
    key: Array,
    data: Any,
    *,
    runs: int = 1,
    layout: str = "auto",
    progress: bool = False,
) -> Fit:
    """Train R independent runs of ``trainer`` on ``data``.

    Args:
      trainer: any :class:`Trainer` (a frozen dataclass, hashable).
      key: typed PRNG key; run r uses ``fold_in(key, r)``.
      data: the trainer's data (a :class:`~mtl_tracing.data.base.MultitaskData` for the
        multitask victims); validated by the trainer's own public entry point.
      runs: R, independent runs.
      layout: ``"auto"``, ``"vmap"`` or ``"loop"`` (see the module docstring).
      progress: a tqdm bar over epochs (x R for the loop), updated from the compiled scan.

    Returns:
      :class:`Fit` with state leaves (R, ...), history {name: (R, epochs)} and step metrics
      {name: (R, epochs, steps)}.
    """
    runs = _check_fit(trainer, key, runs)
    layout = resolve_layout(layout)
    keys = run_keys(key, runs)
    static, traced = _split(trainer)

    def go(show: bool):
        if layout == "vmap":
            return _fit_vmap(static, keys, data, traced, runs=runs, progress=show)
        outs = [_fit_one(static, keys[r], data, traced, progress=show) for r in range(runs)]
        return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)

    if not progress:
        return Fit(*go(False))
    from tqdm.auto import tqdm

    total = trainer.epochs * (1 if layout == "vmap" else runs)
    name = type(trainer).__name__
    with tqdm(total=total, desc=f"{name}: {runs} run(s)", unit="epoch") as bar:
        _BARS.append(bar)
        try:
            out = go(True)
            jax.block_until_ready(out)
        finally:
            _BARS.remove(bar)
    return Fit(*out)


def _check_fit(trainer, key, runs) -> int:
    check_key("key", key)
    if not isinstance(trainer, Trainer):
        raise ValueError(f"trainer must implement the Trainer protocol, got {trainer!r}")
    return check_int("runs", runs, low=1)


def _split(trainer):
    """(static trainer, traced values or None): the ``split_traced`` hook, if defined."""
    split = getattr(trainer, "split_traced", None)
    return split() if split is not None else (trainer, None)


def _pinned(trainer, states):
    """``states`` constrained to ``trainer.state_sharding()`` when the trainer defines it.

    Without it a segment's output states may come back with a sharding propagated from the data
    (the run axis on the task mesh), unlike ``init``'s, and the next segment compiles the whole
    training program again (jit keys on input shardings): ~15 s on an H200 and 5-15 s on 2 CPU
    cores for the real-data trainer.
    """
    sharding = getattr(trainer, "state_sharding", None)
    return states if sharding is None else jax.lax.with_sharding_constraint(states, sharding())


@functools.partial(jax.jit, static_argnames=("trainer",))
def _fit_init(trainer, k_init, data, traced=None):
    trainer = _merged(trainer, traced)
    return _pinned(trainer, jax.vmap(trainer.init, in_axes=(0, None))(k_init, data))


@functools.partial(jax.jit, static_argnames=("trainer",))
def _fit_segment(trainer, states, k_sched, epochs, data, traced=None):
    """Epochs ``epochs`` (an int array) of R stacked runs (``fit``'s epochs, no per-epoch
    evaluation), then ``trainer.evaluate`` once: ``(states, {name: (R,)})``."""
    trainer = _merged(trainer, traced)
    run_epoch = epoch_fn(trainer, data, evaluate=False)

    def one(state, ks):
        def body(s, e):
            return run_epoch(s, ks, e)[0], None

        state = jax.lax.scan(body, state, epochs)[0]
        return state, trainer.evaluate(state, data)

    states, metrics = jax.vmap(one)(states, k_sched)
    return _pinned(trainer, states), metrics


def fit_checkpoints(
    trainer: Trainer,
    key: Array,
    data: Any,
    *,
    checkpoints: Sequence[int],
    runs: int = 1,
    progress: bool = False,
) -> Iterator[Checkpoint]:
    """Train R runs as :func:`fit` does, yielding a :class:`Checkpoint` at each epoch of
    ``checkpoints`` (strictly increasing, in [1, ``trainer.epochs``]).

    The keys are :func:`fit`'s, so the state at checkpoint e is the state ``fit`` reaches after
    e epochs (to float tolerance: the R runs are vmapped, as ``fit``'s ``"vmap"`` layout). The
    states stay on the device between segments; segments of equal length share one compiled
    program (with ``trainer.state_sharding``, see the module docstring). ``trainer.evaluate``
    runs at the checkpoints only (``fit`` evaluates every epoch).
    """
    runs = _check_fit(trainer, key, runs)
    cps = [check_int("checkpoints", e, low=1, high=trainer.epochs) for e in checkpoints]
    if not cps or any(b <= a for a, b in zip(cps, cps[1:], strict=False)):
        raise ValueError(
            f"checkpoints must be non-empty and strictly increasing, got {tuple(checkpoints)!r}"
        )
    static, traced = _split(trainer)
    k_init, k_sched = jax.vmap(jax.random.split, out_axes=1)(run_keys(key, runs))
    states = _fit_init(static, k_init, data, traced)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cps[-1], desc=f"{type(trainer).__name__}: {runs} run(s)", unit="epoch")
    start, hist = 0, []
    try:
        for e in cps:
            epochs = np.arange(start, e, dtype=np.int32)
            states, h = _fit_segment(static, states, k_sched, epochs, data, traced)
            hist.append(h)
            if bar is not None:
                jax.block_until_ready(states)
                bar.update(e - start)
            start = e
            # on the host: an eager jnp.stack would compile a program per checkpoint count
            history = {k: np.stack([np.asarray(x[k]) for x in hist], axis=1) for k in hist[0]}
            yield Checkpoint(e, states, history)
    finally:
        if bar is not None:
            bar.close()
