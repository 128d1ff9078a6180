"""The Gaussian tracing game as a sweep :class:`~mtl_tracing.sweep.engine.CellRunner`.

Per cell and IN adversary (statistics pool the G*T scores; SEs are over games because the
scores of one game share mu_hat): mean and variance of z for IN and OUT with SEs
(:func:`metrics.group_moments_from_sums` on the host, float64, from the per-game moments the
statistics program returns), the pooled AUC with a percentile CI from a paired game
bootstrap, the TPR at ``fpr`` (1%) with a bootstrap CI, and beside them the exact theory:
``theory_*`` moments (E z = d c, Var z = d (AB + c^2)), the paper's Thm 4.3 variance, the
normal-approximation and exact-law (marginal) AUC and TPR, computed for all cells at once by
``gaussian.roc_theory`` (one vectorised call per adversary when the table is assembled).

The strong and weak adversaries are scored on the same simulated games: each cell is
simulated once (``game.game_kernel``; game g uses ``fold_in(cell_key, g)``, as
``game.simulate(cell_key, config, games=G)``) and reported as one row per adversary.
Simulation: with the sufficient sampler (default) ONE program for every (T, N, d, k) of the
sweep (``game.padded_sufficient_game``: T, N, d, k traced, T padded to the largest when cheap,
see ``_bucket``; scores and moments agree with the per-shape sampler to float rounding, the
draws are the same); the faithful sampler and release sweeps compile per (T, N, d, k).
Statistics only have the shape (G, T): they compile once across d, N and k. They run the
group-pair bootstrap alone (its paired game counts drawn in the simulation program) and a cell
it refuses (ties, a short TPR window: rare) is rescored by the fallback program (group pairs
with the sorted path under ``lax.cond``), compiled only then; the numbers are those of the
``lax.cond`` program either way (tested).

A release sweep (``spec.has_release``: a clip C, noise multiplier z or release noise sigma;
see :mod:`mtl_tracing.sweep.spec`) runs ``gaussian.release_kernel`` with the release as three
more traced columns (C, inf for no clip; z C; sigma), so one simulation program per shape
serves every release value, and adds the columns in :data:`RELEASE_COLUMNS`. Its theory
columns are the exact theory with A + sigma_tot^2 (``roc_theory``'s ``release_noise_std``
column, sigma_tot^2 = (z C / T)^2 + sigma^2); a clipped cell has no closed form, so its
theory columns are NaN (``paper_var`` stays: it is the paper's noiseless formula).

``spec.lrt`` adds the optimal (likelihood-ratio) statistic Lambda of
:mod:`mtl_tracing.gaussian.optimal` (:data:`LRT_COLUMNS`): the simulation runs the sampler with
its ``norms`` (per shape: no buckets) and computes Lambda per adversary from z, ||alpha||^2,
||beta||^2 and the cell's A (+ sigma_tot^2), B, c; the statistics bootstrap the pairs
(z_IN, z_OUT) and (Lambda_IN, Lambda_OUT) of each adversary in one ``lax.map``, on the same
game counts; the theory is ``roc_theory(..., statistic="lrt")``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from mtl_tracing import metrics
from mtl_tracing.gaussian.config import GameShape
from mtl_tracing.gaussian.optimal import lrt_statistic
from mtl_tracing.metrics.bootstrap import paired_group_counts
from mtl_tracing.sweep.engine import CellRunner
from mtl_tracing.sweep.spec import SHAPE_FIELDS, TRACED_FIELDS, SweepSpec

__all__ = ["COLUMNS", "RELEASE_COLUMNS", "LRT_COLUMNS", "gaussian_runner", "bytes_per_cell"]

# Per-cell metrics, per IN adversary or OUT: the moments (host) and the ROC statistics.
_IN_MOMENTS = ("mean_in", "mean_in_se", "var_in", "var_in_se")
_OUT_MOMENTS = ("mean_out", "mean_out_se", "var_out", "var_out_se")
_ROC_METRICS = ("auc", "auc_lo", "auc_hi", "tpr", "tpr_lo", "tpr_hi")
_BOOT_BATCH = 4  # bootstrap resamples evaluated in parallel inside a cell

COLUMNS: dict[str, str] = {
    "cell_id": "index of (config, seed) in the canonical product order of the full spec",
    "seed": "seed of the cell (its key is fold_in(key(root_seed), cell_id))",
    "adversary": "IN adversary: strong (B from the training samples) or weak (fresh samples)",
    "tasks": "T, IN tasks in the release mu_hat",
    "samples": "N, training samples per task",
    "dim": "d, data dimension",
    "challenge": "k, challenge batch size",
    "task_std": "sbar, std of task means",
    "sample_std": "s, std of samples",
    "mean": "mu_bar, global mean (scalar)",
    "games": "G, games in the cell (each yields T IN and T OUT scores)",
    "mean_in": "empirical mean of z_IN (pooled over G*T scores)",
    "mean_in_se": "standard error of mean_in over games",
    "var_in": "empirical variance of z_IN (pooled)",
    "var_in_se": "standard error of var_in over games (delta method)",
    "mean_out": "empirical mean of z_OUT",
    "mean_out_se": "standard error of mean_out over games",
    "var_out": "empirical variance of z_OUT",
    "var_out_se": "standard error of var_out over games (delta method)",
    "auc": "pooled empirical AUC of IN vs OUT scores (ties count 1/2)",
    "auc_lo": "lower end of the percentile CI of auc (paired game bootstrap)",
    "auc_hi": "upper end of the percentile CI of auc",
    "tpr": "empirical TPR at the target FPR (threshold with realised FPR <= target)",
    "tpr_lo": "lower end of the percentile CI of tpr (paired game bootstrap)",
    "tpr_hi": "upper end of the percentile CI of tpr",
    "fpr": "target FPR of tpr",
    "level": "confidence level of the CIs",
    "theory_mean_in": "exact E z_IN = d c",
    "theory_var_in": "exact Var z_IN = d (A B + c^2)",
    "theory_mean_out": "exact E z_OUT = 0",
    "theory_var_out": "exact Var z_OUT = d A B",
    "paper_var": "the paper's Thm 4.3 variance d/T [sbar^4 + s^4/(kN) + (k+N)/(kN) sbar^2 s^2]",
    "normal_auc": "normal-approximation AUC with the exact moments",
    "exact_auc": "exact-law marginal AUC (z = a X - b Y; Imhof's formula on fixed quadrature "
    "nodes, gaussian.roc_theory, vectorised over cells; absolute error ~1e-13)",
    "normal_tpr": "normal-approximation TPR at fpr",
    "exact_tpr": "exact-law marginal TPR at fpr (gaussian.roc_theory, fixed-node quadrature "
    "vectorised over cells; absolute error ~1e-14, relative ~1e-12)",
}


# Added after ``mean`` in a release sweep's table (the plain table is unchanged).
RELEASE_COLUMNS: dict[str, str] = {
    "clip": "C, clipping norm of each task's contribution xbar_i - mu_bar (NaN: no clipping)",
    "noise_multiplier": "z, the noise on the clipped sum has std z C",
    "release_noise_std": "sigma, extra Gaussian noise on mu_hat (no guarantee)",
    "noise_std": "sigma_tot = sqrt((z C / T)^2 + sigma^2), noise std per coordinate of mu_hat",
    "mu": "GDP mu = 2/z of the clipped release (replace-one adjacency; inf: no guarantee)",
}
_RELEASE_TRACED = ("clip_value", "sum_noise_std", "release_noise_std")

# Added at the end of the table when ``spec.lrt`` (the optimal statistic Lambda).
LRT_COLUMNS: dict[str, str] = {
    "lrt_" + k: COLUMNS[k].replace("tpr", "lrt_tpr").replace("auc", "lrt_auc") + " (Lambda)"
    for k in _ROC_METRICS
} | {
    "lrt_exact_auc": "exact AUC of the optimal statistic Lambda (roc_theory(statistic='lrt'))",
    "lrt_exact_tpr": "exact TPR of Lambda at fpr (roc_theory(statistic='lrt'))",
}


def _columns(release: bool, lrt: bool = False) -> dict[str, str]:
    cols = COLUMNS
    if release:
        names = list(COLUMNS)
        at = names.index("mean") + 1
        cols = {k: COLUMNS[k] for k in names[:at]} | RELEASE_COLUMNS
        note = " (release: A + sigma_tot^2; NaN for a clipped cell, which has no closed form)"
        for k in names[at:]:
            theory = k.startswith(("theory_", "normal_", "exact_"))
            cols[k] = COLUMNS[k] + (note if theory else "")
    return cols | LRT_COLUMNS if lrt else cols


def bytes_per_cell(spec: SweepSpec, shape: GameShape, dtype=jnp.float32) -> int:
    """Memory estimate for one cell of ``shape``: its G games and their statistics.

    The statistics part is :func:`metrics.bootstrap_memory_bytes` of the paired (G, T)
    bootstrap the cell runs, plus the three (G, T) score sets.
    """
    from mtl_tracing.gaussian.game import bytes_per_game

    games_b = spec.games * bytes_per_game(spec.sampler, shape, dtype, norms=spec.lrt)
    scores_b = 3 * spec.games * shape.tasks * max(jnp.dtype(dtype).itemsize, 4)
    stats_b = metrics.bootstrap_memory_bytes(
        (metrics.auc, metrics.TprAtFprStatistic(spec.fpr)),
        (spec.games, shape.tasks),
        (spec.games, shape.tasks),
        num_resamples=spec.num_resamples,
        chunk=min(_BOOT_BATCH, spec.num_resamples),
        dtype=dtype,
    )
    return int(games_b + scores_b + stats_b + 4096)


def _roc_stats(s_in, s_out, counts, *, fpr, level, path: str):
    """Pooled AUC and TPR at ``fpr`` of s_in vs s_out (G, T) with paired game-bootstrap CIs.

    Traced (inside the statistics program). One bootstrap for both statistics (shared
    replicates; ``counts``: the paired game counts (R + 1, G), drawn by the simulation
    program). ``path``: ``"pairs"`` (the group-pair path alone; ``ok`` False when its numbers
    do not hold: the cell then goes to the fallback program) or ``"auto"`` (the fallback
    program: group pairs with a ``lax.cond`` fallback to the sorted path, as
    :func:`metrics.grouped_bootstrap` traced). Returns
    ((auc, auc_lo, auc_hi, tpr, tpr_lo, tpr_hi), ok).
    """
    from mtl_tracing.metrics.bootstrap import bootstrap_intervals

    (auc, tpr), ok = bootstrap_intervals(
        (counts, counts),
        s_in,
        s_out,
        (metrics.auc, metrics.TprAtFprStatistic(fpr)),
        level=level,
        chunk=min(_BOOT_BATCH, counts.shape[0] - 1),
        path=path,
    )
    return (auc.estimate, auc.low, auc.high, tpr.estimate, tpr.low, tpr.high), ok


# Pad every T of a sweep to the largest when the padded games cost at most this many extra
# task draws (~0.1 s on a CPU core, against ~2 s to compile one more simulation program);
# otherwise T is padded to the next power of two (at most 2x the work).
_PAD_BUDGET = 1 << 24


def _bucket(statics, games) -> dict[tuple, tuple]:
    """The sufficient sampler's simulation buckets: ``{(T, N, d, k): (width,)}``."""
    t_max = max(static[0] for static, _ in statics)
    extra = sum(n * (t_max - static[0]) for static, n in statics) * games
    if extra <= _PAD_BUDGET:
        return {static: (t_max,) for static, _ in statics}
    return {static: (1 << (static[0] - 1).bit_length(),) for static, _ in statics}


def _bucket_lrt(statics, games) -> dict[tuple, tuple]:
    """Buckets with the optimal statistic's norms: ``{(T, N, d, k): (width, rows)}``, the rows
    (d - 1 orthogonal coordinates) padded like T: to the largest when the padded row draws
    cost at most 8 x :data:`_PAD_BUDGET` task draws (a norms program compiles in ~5 s of
    CPU), else T and d - 1 to the next powers of two."""
    t_max = max(static[0] for static, _ in statics)
    r_max = max(static[2] - 1 for static, _ in statics)
    cost = sum(n * (t_max * r_max - static[0] * (static[2] - 1)) for static, n in statics)
    if cost * games <= 8 * _PAD_BUDGET:
        return {static: (t_max, r_max) for static, _ in statics}
    return {
        static: (1 << (static[0] - 1).bit_length(), (1 << (static[2] - 1).bit_length()) - 1)
        for static, _ in statics
    }


def _static_args(static, dtype) -> tuple:
    from mtl_tracing.gaussian.game import padded_game_args

    return padded_game_args(GameShape(*static), dtype)


def _trim(static, out):
    """A padded cell's simulation output cut to its T (the per-game moments are already
    over its T tasks only)."""
    T = static[0]
    cut = ("in", "out", "lrt_in", "lrt_out")
    return {**out, **{k: out[k][..., :T] for k in cut if k in out}}


def gaussian_runner(spec: SweepSpec) -> CellRunner:
    """The Gaussian-game runner for ``spec`` (its sampler, adversaries and statistics).

    Cached on the fields that change the programs, so sweeps that differ only in values of
    traced fields (the release's included), seeds or lists reuse the compiled programs.
    """
    if not isinstance(spec, SweepSpec):
        raise ValueError(f"spec must be a SweepSpec, got {spec!r}")
    args = (spec.sampler, spec.adversaries, spec.fpr, spec.level, spec.num_resamples)
    return _gaussian_runner(*args, spec.has_release, *((True,) if spec.lrt else ()))


def _lrt(invs, params, z_in, out, norms, advs, release: bool):
    """Lambda of each adversary, (A, G, T) for IN and for OUT, from the kernel's outputs;
    ``invs`` = (1/T, 1/N, 1/k), concrete or traced (a bucket)."""
    inv_t, inv_n, inv_k = invs
    sbar, s = params[0], params[1]
    c_strong = (sbar**2 + s**2 * inv_n) * inv_t
    noise = (params[4] * inv_t) ** 2 + params[5] ** 2 if release else 0.0  # sigma_tot^2
    abc = {"strong": c_strong, "weak": sbar**2 * inv_t}
    abc = {a: (c_strong + noise, sbar**2 + s**2 * inv_k, abc[a]) for a in advs}
    a2, sq = norms[0][:, None], {"strong": norms[1], "weak": norms[2]}  # (G, 1), (G, T)
    lam_in = [lrt_statistic(z, a2, sq[a], *abc[a]) for a, z in zip(advs, z_in, strict=True)]
    return jnp.stack(lam_in), jnp.stack([lrt_statistic(out, a2, norms[3], *abc[a]) for a in advs])


@functools.lru_cache(maxsize=64)
def _gaussian_runner(
    sampler, advs, fpr, level, num_resamples, release=False, lrt=False
) -> CellRunner:
    stat_spec = SweepSpec(
        sampler=sampler, adversaries=advs, fpr=fpr, level=level, num_resamples=num_resamples,
        lrt=lrt,
    )  # fmt: skip

    bucketed = sampler == "sufficient" and not release

    def simulate(static, games, dtype):
        from mtl_tracing.gaussian.game import game_kernel, padded_sufficient_game
        from mtl_tracing.gaussian.release import release_kernel

        if bucketed:  # static = (width[, rows]): T, N, d, k are traced int32 columns
            width, *rows = static
            kernel = functools.partial(
                padded_sufficient_game, width=width, dtype=dtype, rows=rows[0] if lrt else None
            )
        else:
            shape = GameShape(*static)
            kernel = (
                release_kernel(sampler, shape, dtype, norms=lrt)
                if release
                else game_kernel(sampler, shape, dtype, norms=lrt)
            )

        def sim(cell_key, *params):  # (sbar, s, mu_bar[, C, z C, sigma][, T, N, d, k])
            g = jnp.arange(games, dtype=jnp.uint32)
            keys = jax.vmap(lambda i: jax.random.fold_in(cell_key, i))(g)
            if bucketed:  # mu_bar cancels exactly (game._sufficient_game)
                params = params[:2] + params[3:]
            strong, weak, out, *norms = jax.vmap(kernel, in_axes=(0,) + (None,) * len(params))(
                keys, *params
            )
            z_in = jnp.stack([{"strong": strong, "weak": weak}[a] for a in advs])  # (A, G, T)
            # The per-game moments are reduced here, fused with the simulation as they always
            # were: moved to the statistics program they differ in the last bits.
            if bucketed:  # over the cell's own T tasks (the padded scores are 0), times 1/T
                inv_t = params[5]

                def mean_t(x):
                    return jnp.sum(x, axis=-1) * inv_t
            else:

                def mean_t(x):
                    return jnp.mean(x, axis=-1)

            moments = {"out/m_g": mean_t(out), "out/q_g": mean_t(out * out)}
            m_g = mean_t(z_in)  # (A, G)
            q_g = mean_t(z_in * z_in)
            for i, adv in enumerate(advs):
                moments[f"{adv}/m_g"] = m_g[i]
                moments[f"{adv}/q_g"] = q_g[i]
            # The bootstrap's paired game counts (R + 1, G): they depend on the key, G and R
            # only, so they are drawn here, in the program every T shares.
            boot_key = jax.random.fold_in(cell_key, 2**31)  # never a game index (G < 2^31)
            counts = paired_group_counts(boot_key, games, num_resamples)
            res = {"in": z_in, "out": out, "moments": moments, "counts": counts}
            if lrt:
                invs = (
                    params[5:8] if bucketed else (1.0 / static[0], 1.0 / static[1], 1.0 / static[3])
                )
                res["lrt_in"], res["lrt_out"] = _lrt(invs, params, z_in, out, norms, advs, release)
            return res

        return sim

    def make_statistics(path):
        def statistics(cell_key, scores):  # the key is unused: the counts come drawn
            z_in, out = scores["in"], scores["out"]  # (A, G, T), (G, T)
            z_out = jnp.broadcast_to(out, z_in.shape)
            names = [f"{adv}/{{}}" for adv in advs]
            if lrt:  # the pairs (Lambda_IN, Lambda_OUT) of each adversary after z's
                z_in = jnp.concatenate([z_in, scores["lrt_in"]])
                z_out = jnp.concatenate([z_out, scores["lrt_out"]])
                names += [f"{adv}/lrt_{{}}" for adv in advs]
            res = dict(scores["moments"])  # per-game moments, (G,) each
            # lax.map, not vmap: the fallback's lax.cond stays a real branch (under vmap it
            # runs both paths), and the bootstrap is compiled once for all adversaries.
            roc, ok = jax.lax.map(
                lambda p: _roc_stats(*p, scores["counts"], fpr=fpr, level=level, path=path),
                (z_in, z_out),
            )
            for i, fmt in enumerate(names):
                for name, v in zip(_ROC_METRICS, roc, strict=True):
                    res[fmt.format(name)] = v[i]
            if path == "pairs":
                res["_ok"] = jnp.all(ok)
            return res

        return statistics

    statistics = make_statistics("pairs")
    fallback = make_statistics("auto")

    def bytes_(static, games, dtype):
        return bytes_per_cell(
            SweepSpec(**{**stat_spec.to_dict(), "games": games}), GameShape(*static), dtype
        )

    return CellRunner(
        static_fields=SHAPE_FIELDS,
        traced_fields=TRACED_FIELDS + (_RELEASE_TRACED if release else ()),
        simulate=simulate,
        statistics=statistics,
        bytes_per_cell=bytes_,
        table=_table,
        columns=_columns(release, lrt),
        bucket=(_bucket_lrt if lrt else _bucket) if bucketed else None,
        static_args=_static_args if bucketed else None,
        trim=_trim if bucketed else None,
        fallback_statistics=fallback,
    )


def _theory_columns(spec: SweepSpec, cells, statistic="z") -> dict[str, dict[str, np.ndarray]]:
    """``{adversary: {theory column: (cells,)}}``: one vectorised ``gaussian.roc_theory`` call per
    adversary over all cells (no cache: each assembled table computes its theory once)."""
    from mtl_tracing import gaussian

    fields = ("tasks", "samples", "dim", "challenge", "task_std", "sample_std")
    args = {f: np.array([getattr(config, f) for _, config, _ in cells]) for f in fields}
    args["statistic"] = statistic
    if not spec.has_release:
        return {
            adv: gaussian.roc_theory(**args, adversary=adv, fpr=spec.fpr)
            for adv in spec.adversaries
        }
    sig = np.array([config.noise_std for _, config, _ in cells])
    clipped = np.array([config.clip is not None for _, config, _ in cells])
    out = {}
    for adv in spec.adversaries:
        cols = gaussian.roc_theory(**args, adversary=adv, fpr=spec.fpr, release_noise_std=sig)
        # No closed form with clipping: NaN (the paper's noiseless formula stays).
        out[adv] = {
            k: v if k == "paper_var" else np.where(clipped, np.nan, v) for k, v in cols.items()
        }
    return out


def _table(spec: SweepSpec, cells, res) -> dict[str, np.ndarray]:
    """The result table, one row per (cell, adversary), cell-major; vectorised over cells.

    ``res`` holds each cell's statistics ({name: array}), in the order of ``cells``.
    """
    advs = spec.adversaries
    n_adv = len(advs)

    def stacked(name):  # (cells, ...) of one per-cell result
        return np.stack([r[name] for r in res])

    def per_row(x):  # (cells,) -> (rows,), each cell repeated for its adversaries
        return np.repeat(np.asarray(x), n_adv, axis=0)

    def interleave(by_adv):  # {adv: (cells, ...)} -> (rows, ...) in row order
        return np.stack([by_adv[a] for a in advs], axis=1).reshape(-1, *by_adv[advs[0]].shape[1:])

    tasks = np.array([c.tasks for _, c, _ in cells], np.float64)
    table = {
        "cell_id": per_row(np.array([cid for cid, _, _ in cells], np.int64)),
        "seed": per_row(np.array([seed for _, _, seed in cells], np.int64)),
        "adversary": np.array(list(advs) * len(cells), dtype="<U6"),
    }
    for f in spec.cell_fields:
        dt = np.int64 if f in SHAPE_FIELDS else np.float64
        vals = [getattr(c, f) for _, c, _ in cells]
        table[f] = per_row(np.array([np.nan if v is None else v for v in vals], dt))
    if spec.has_release:
        table["noise_std"] = per_row(np.array([c.noise_std for _, c, _ in cells], np.float64))
        table["mu"] = per_row(np.array([c.release.mu for _, c, _ in cells], np.float64))
    table["games"] = np.full(len(cells) * n_adv, spec.games, np.int64)
    moments = metrics.group_moments_from_sums
    mom_in = {a: moments(stacked(f"{a}/m_g"), stacked(f"{a}/q_g"), tasks) for a in advs}
    mom_out = moments(stacked("out/m_g"), stacked("out/q_g"), tasks)
    for j, name in enumerate(_IN_MOMENTS):
        table[name] = interleave({a: mom_in[a][j] for a in advs})
    for j, name in enumerate(_OUT_MOMENTS):
        table[name] = per_row(mom_out[j])
    for name in _ROC_METRICS:  # ROC metrics keep the simulation dtype
        table[name] = interleave({a: stacked(f"{a}/{name}") for a in advs})
    table["fpr"] = np.full(len(cells) * n_adv, spec.fpr, np.float64)
    table["level"] = np.full(len(cells) * n_adv, spec.level, np.float64)
    theory_cols = _theory_columns(spec, cells)
    for k in theory_cols[advs[0]]:
        table[k] = interleave({a: np.asarray(theory_cols[a][k], np.float64) for a in advs})
    if spec.lrt:
        for name in _ROC_METRICS:
            table[f"lrt_{name}"] = interleave({a: stacked(f"{a}/lrt_{name}") for a in advs})
        lrt_cols = _theory_columns(spec, cells, statistic="lrt")
        for k in ("exact_auc", "exact_tpr"):
            table[f"lrt_{k}"] = interleave({a: lrt_cols[a][k] for a in advs})
    return {name: table[name] for name in _columns(spec.has_release, spec.lrt)}
