"""Few-shot image tasks: w-way s-shot tasks with disjoint support and query sets (Sec. V-A).

Notation (paper -> argument): w ``ways``, s ``shots``, B ``num_tasks`` (a meta-batch or the
trials of a game), C classes of the source, M images kept per class, (H, W) the image size.

Sources (:func:`load_source`):

- ``"digits"``: scikit-learn's bundled handwritten digits (8x8, 10 classes, 1797 images; nothing
  to download), pixels scaled to [0, 1].
- ``"mnist"`` / ``"fashion-mnist"``: the IDX files of a folder the user already has
  (:mod:`mtl_tracing.data.idx`), 28x28, train split.

A source is cut per class into three disjoint pools (:func:`split_pools`): ``train`` (the task
learners' data during meta-training and the attacked tasks), ``test`` (meta-test accuracy) and
``outside`` (fresh images of the data distribution: the non-member targets of the game and
nothing else). Every pool is a :class:`FewShotPool`, a (C, M, H, W, 1) table, so the sampler
is one compiled function whatever the source.

A task (:func:`sample_tasks`) picks w of the C classes, then 2 s distinct images of each: the
first s go to the support set, the next s to the query set (disjoint, s per class each). Labels
are the class's position among the task's w classes, slot k has label ``k // s`` (so the label
vectors are known to everyone: the protocol fixes them).

Padded tasks: ``active=(w', s')`` (traced ints) draws a w'-way s'-shot task inside the w-way
s-shot layout; ``mask`` marks its w' s' active slots (classes ``< w'``, shots ``< s'``). The
active part has the law of an unpadded w'-way s'-shot task (the first w' of a uniform
permutation of the classes, s' + s' distinct images of each), so a grid of (w', s') shares
one compiled sampler, victim and attack.

Non-members (:func:`sample_nonmembers`, :data:`NONMEMBER_MODES`): images of the ``outside``
pool, never in any task. ``"any-class"`` draws the class uniformly among all C (the data
distribution, the paper's game: "randomly chosen from the data distribution");
``"same-class"`` takes the class of the member's slot (a stricter game: the image differs,
the class does not).
"""

from __future__ import annotations

import functools
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from mtl_tracing import flat_random
from mtl_tracing._validate import check_choice, check_int, check_key
from mtl_tracing.data.base import MultitaskData
from mtl_tracing.data.idx import load_idx_split

__all__ = [
    "SOURCES",
    "NONMEMBER_MODES",
    "FewShotSource",
    "FewShotPool",
    "FewShotPools",
    "FewShotTasks",
    "load_source",
    "split_pools",
    "check_task_shape",
    "sample_tasks",
    "sample_nonmembers",
    "active_slots",
    "check_active",
    "task_labels",
    "as_multitask_data",
]

SOURCES = ("digits", "mnist", "fashion-mnist")
NONMEMBER_MODES = ("any-class", "same-class")


class FewShotSource(NamedTuple):
    """All images of a source: images (n, H, W) float32 in [0, 1], labels (n,) int32."""

    images: np.ndarray
    labels: np.ndarray
    name: str


class FewShotPool(NamedTuple):
    """Images by class: (C, M, H, W, 1) (a pytree; passes through ``jit``)."""

    images: Array

    @property
    def classes(self) -> int:
        return int(self.images.shape[0])

    @property
    def per_class(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.images.shape[2:])  # type: ignore[return-value]


class FewShotPools(NamedTuple):
    """The three disjoint pools of one source (see the module docstring)."""

    train: FewShotPool
    test: FewShotPool
    outside: FewShotPool


class FewShotTasks(NamedTuple):
    """B few-shot tasks; slot k of a set has label ``k // shots``.

    Fields:
      support_x: (B, w s, H, W, 1) support images D^s.
      support_y: (B, w s) int32 labels.
      query_x: (B, w s, H, W, 1) query images D^q (disjoint from the support set).
      query_y: (B, w s) int32 labels.
      classes: (B, w) int32, the source classes of the task.
      support_idx: (B, w s) int32, each support image's index within its class of the pool.
      query_idx: (B, w s) int32, the same for the query images.
      mask: (B, w s) bool, the active slots of padded tasks (None: every slot is active).
    """

    support_x: Array
    support_y: Array
    query_x: Array
    query_y: Array
    classes: Array
    support_idx: Array
    query_idx: Array
    mask: Array | None = None


def load_source(name: str = "digits", data_dir: str | os.PathLike | None = None) -> FewShotSource:
    """Load a source: ``"digits"`` (bundled) or ``"mnist"``/``"fashion-mnist"`` (``data_dir``)."""
    name = check_choice("source", name, SOURCES)
    if name == "digits":
        if data_dir is not None:
            raise ValueError(f"data_dir is only for mnist/fashion-mnist, got {str(data_dir)!r}")
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = np.asarray(bunch.images, dtype=np.float32) / 16.0
        return FewShotSource(images, np.asarray(bunch.target, dtype=np.int32), name)
    if data_dir is None:
        raise ValueError(f"source={name!r} needs data_dir (a folder with the IDX files), got None")
    images, labels = load_idx_split(data_dir, "train")
    return FewShotSource(images, labels, name)


def split_pools(
    key: Array,
    source: FewShotSource,
    *,
    fractions: tuple[float, float] = (0.5, 0.25),
    max_per_class: int | None = None,
    dtype=None,
) -> FewShotPools:
    """Cut every class into disjoint train / test / outside pools of equal size across classes.

    Args:
      key: typed key; shuffles each class before cutting.
      source: a :class:`FewShotSource`.
      fractions: (train, test) shares of each class; ``outside`` gets the rest.
      max_per_class: cap on the images kept per class before cutting (MNIST has ~6000).
      dtype: float dtype of the pools (float32 default).
    """
    check_key("key", key)
    if not isinstance(source, FewShotSource):
        raise ValueError(f"source must be a FewShotSource, got {type(source).__name__}")
    f_train, f_test = (float(f) for f in fractions)
    if not (0 < f_train and 0 < f_test and f_train + f_test < 1):
        raise ValueError(f"fractions must be positive with sum < 1, got {fractions!r}")
    dt = jnp.float32 if dtype is None else dtype
    classes = np.unique(source.labels)
    counts = np.array([np.sum(source.labels == c) for c in classes])
    m = int(counts.min())
    if max_per_class is not None:
        m = min(m, check_int("max_per_class", max_per_class, low=3))
    n_train, n_test = int(m * f_train), int(m * f_test)
    if min(n_train, n_test, m - n_train - n_test) < 1:
        raise ValueError(f"every pool needs >= 1 image per class, got {m} images per class")
    # One uniform sort key per image of a padded (C, max count) table, drawn in one program
    # (a permutation per class would compile one program per class size): sorting a class's
    # keys gives a uniformly random order of its images.
    sort_keys = np.asarray(flat_random.uniform(key, (classes.size, int(counts.max()))))
    table = []
    for c, u, n_c in zip(classes, sort_keys, counts, strict=True):
        idx = np.flatnonzero(source.labels == c)
        perm = np.argsort(u[:n_c], kind="stable")[:m]
        table.append(source.images[idx[perm]])
    table = jnp.asarray(np.stack(table)[..., None], dtype=dt)  # (C, m, H, W, 1)
    return FewShotPools(
        FewShotPool(table[:, :n_train]),
        FewShotPool(table[:, n_train : n_train + n_test]),
        FewShotPool(table[:, n_train + n_test :]),
    )


def check_task_shape(pool: FewShotPool, ways: int, shots: int, *, extra: int = 0) -> None:
    """``ValueError`` unless w-way s-shot tasks fit the pool (2 s + ``extra`` per class)."""
    ways = check_int("ways", ways, low=2)
    shots = check_int("shots", shots, low=1)
    if ways > pool.classes:
        raise ValueError(f"ways must be <= the {pool.classes} classes of the data, got {ways}")
    if 2 * shots + extra > pool.per_class:
        raise ValueError(
            f"shots must be <= {(pool.per_class - extra) // 2} "
            f"(the pool has {pool.per_class} images per class), got {shots}"
        )


def task_labels(ways: int, shots: int) -> Array:
    """(w s,) int32 labels of a support or query set: slot k has label k // s."""
    return jnp.repeat(jnp.arange(ways, dtype=jnp.int32), shots)


def active_slots(ways: int, shots: int, active) -> Array:
    """(w s,) bool: the slots of an ``active = (w', s')`` task in the w-way s-shot layout."""
    k = jnp.arange(ways * shots)
    a = jnp.asarray(active, jnp.int32)
    return (k // shots < a[0]) & (k % shots < a[1])


@functools.partial(jax.jit, static_argnames=("ways", "shots", "num_tasks"))
def _sample(key, images, active, *, ways, shots, num_tasks):
    c, m = images.shape[:2]
    mask = active_slots(ways, shots, active)

    def one(k):
        k_cls, k_img = jax.random.split(k)
        classes = jax.random.permutation(k_cls, c)[:ways]
        keys = jax.random.split(k_img, ways)
        picks = jax.vmap(lambda kk: jax.random.permutation(kk, m)[: 2 * shots])(keys)  # (w, 2s)
        imgs = images[classes[:, None], picks]  # (w, 2s, H, W, 1)
        sup, qry = imgs[:, :shots], imgs[:, shots:]
        flat = lambda a: a.reshape((ways * shots,) + a.shape[2:])  # noqa: E731
        labels = task_labels(ways, shots)
        return FewShotTasks(
            flat(sup),
            labels,
            flat(qry),
            labels,
            classes.astype(jnp.int32),
            picks[:, :shots].reshape(-1).astype(jnp.int32),
            picks[:, shots:].reshape(-1).astype(jnp.int32),
            mask,
        )

    return jax.vmap(one)(jax.random.split(key, num_tasks))


def check_active(active, ways: int, shots: int):
    """``active`` as a (2,) int32 array (default (w, s)); concrete values checked: 2 <= w' <= w,
    1 <= s' <= s. A traced array passes unchecked."""
    if active is None:
        return jnp.asarray([ways, shots], jnp.int32)
    if isinstance(active, jax.core.Tracer):
        return active
    a = np.asarray(active)
    if a.shape != (2,):
        raise ValueError(f"active must be (ways, shots), got {active!r}")
    check_int("active ways", int(a[0]), low=2, high=ways)
    check_int("active shots", int(a[1]), low=1, high=shots)
    return jnp.asarray(a, jnp.int32)


def sample_tasks(
    key: Array, pool: FewShotPool, *, ways: int, shots: int, num_tasks: int, active=None
) -> FewShotTasks:
    """B = ``num_tasks`` w-way s-shot tasks from ``pool`` (disjoint support/query, s per class).

    ``active = (w', s')`` (ints or a traced (2,) int array; default (w, s)) draws padded
    w'-way s'-shot tasks in the w-way s-shot layout (see the module docstring). Traceable in
    ``key``, ``pool`` and ``active`` (call it inside ``jit``); the checks run on shapes only.
    """
    check_task_shape(pool, ways, shots)
    num_tasks = check_int("num_tasks", num_tasks, low=1)
    active = check_active(active, ways, shots)
    return _sample(key, pool.images, active, ways=ways, shots=shots, num_tasks=num_tasks)


def sample_nonmembers(key: Array, pool: FewShotPool, classes: Array, *, mode: str):
    """Non-member targets, one per member: images (n, H, W, 1), their classes (n,), indices (n,).

    ``classes`` (n,) int: the class of each member's slot (used by ``"same-class"`` only).
    ``mode``: ``"any-class"`` (class uniform over the pool's C classes: the data distribution)
    or ``"same-class"`` (the member's class). The image is uniform among the pool's images of
    that class; pass the ``outside`` pool, whose images are in no task. Traceable.
    """
    mode = check_choice("nonmember mode", mode, NONMEMBER_MODES)
    classes = jnp.asarray(classes, jnp.int32)
    k_cls, k_idx = jax.random.split(key)
    n = classes.shape[0]
    if mode == "any-class":
        classes = jax.random.randint(k_cls, (n,), 0, pool.classes, jnp.int32)
    idx = jax.random.randint(k_idx, (n,), 0, pool.per_class, jnp.int32)
    return pool.images[classes, idx], classes, idx


def as_multitask_data(tasks: FewShotTasks, out_tasks: FewShotTasks) -> MultitaskData:
    """The :class:`MultitaskData` view: support sets as x, query sets as the held-out part.

    IN tasks: ``tasks`` (x = support, x_heldout = query); OUT tasks: ``out_tasks`` (tasks the
    victim never saw). Labels become x's float dtype, as ``MultitaskData`` asks.
    """
    dt = tasks.support_x.dtype
    return MultitaskData(
        x=tasks.support_x,
        y=tasks.support_y.astype(dt),
        x_out=out_tasks.support_x,
        y_out=out_tasks.support_y.astype(dt),
        x_heldout=tasks.query_x,
        y_heldout=tasks.query_y.astype(dt),
        x_out_heldout=out_tasks.query_x,
        y_out_heldout=out_tasks.query_y.astype(dt),
        info={"classes": tasks.classes, "out_classes": out_tasks.classes},
    )
