"""Job ``dp_defence``: task-level differential privacy as the defence (App. C.1), and audits.

Panels (one figure, ``dp_defence.png``):

- **(a) Gaussian game, exact ROC vs the GDP curves (log-log).** For each noise multiplier z
  (clip C = 1): the exact ROC of the strong tracing test on the *unclipped* release with the
  same noise (std z C / T on mu_hat; :mod:`mtl_tracing.gaussian.release`), the mu = 2/z GDP
  curve, and simulated ROC points of the *clipped* release (faithful sampler). Clipped points
  stay under their curve; the unclipped exact ROC crosses it (no guarantee without clipping).
  Dotted: the exact ROC of the optimal (likelihood-ratio) test Lambda on the same unclipped
  release (:mod:`mtl_tracing.gaussian.optimal`), above z's.
- **(d) The optimal test against mu-GDP.** With a clip C* that (almost) never binds (the
  1 - 1e-6 quantile of ||xbar_i - mu_bar||), the release is the unclipped one with noise
  z C* / T except with probability <= 2 T 1e-6, and it is mu = 2/z-GDP; the exact ROC of
  Lambda there is the exact trade-off curve of one random task's membership from (alpha,
  beta). It lies under G_mu (checked: excess <= 1e-4); its mu_eff(FPR) = Phi^-1(TPR) -
  Phi^-1(FPR) is about a quarter of mu (the average task's contribution is far from the
  worst-case sensitivity 2 C*): the GDP bound is loose by ~4x in mu for an average task.
- **(b) Synthetic MTL with task-level DP-SGD** (:class:`~mtl_tracing.victims.dp.DPSGDTrainer`)
  at each target epsilon (z calibrated by the RDP accountant at ``delta``; epsilon = inf is
  z = 0, clipping and sampling only): variance-attack AUC (pooled, task-bootstrap CI) and TPR
  at 1% FPR for both adversaries, and held-out IN accuracy (utility).
- **(c) Audits against the accountant.** mu_lb and epsilon_lb (Clopper-Pearson, split
  threshold, :mod:`mtl_tracing.audit`) of the worst-case canary (independent trials in one
  compiled call) and of the strong tracing attack on random tasks of the clipped Gaussian game
  (one IN/OUT score pair per game), against mu = 2/z and its epsilon(delta); and the one-run
  audit (Steinke et al. 2023) of each DP-SGD model from the tracing scores of its 2T tasks
  (IN = trained), against the accountant's epsilon.

One-run audit caveat: the synthetic data hold T IN and T OUT i.i.d. tasks, so IN is a uniformly
random half, not T independent fair coins as the theorem assumes; the numbers are reported as
an illustration next to the accountant, not as a certified bound.

Files: ``dp_defence.json``, ``dp_defence.npz``, ``dp_defence.png`` / ``.pdf``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mtl_tracing.experiments.registry import Option

__all__ = ["HELP", "OPTIONS", "QUICK", "run", "plot", "load", "headline", "check"]

HELP = "Task-level DP: GDP bounds in the Gaussian game, DP-SGD on synthetic MTL, privacy audits."
STEM = "dp_defence"
JSON_NAME, NPZ_NAME = "dp_defence.json", "dp_defence.npz"
DELTA = 1e-5
CLIP = 1.0
#: Noise multipliers of the Gaussian game (mu = 2/z: 4, 2, 1, 0.5).
Z_GRID = (0.5, 1.0, 2.0, 4.0)
EPSILONS = (0.5, 1.0, 2.0, 4.0, 8.0, math.inf)
SIZES = {
    # game: GaussianGameConfig kwargs; games: clipped games per z; canary: trials per z;
    # mtl: (tasks, dim, embed_dim, samples, holdout, epochs, warm, hidden, runs, trials, q)
    "default": {
        "game": {"tasks": 4, "samples": 4, "dim": 16, "challenge": 2, "task_std": 3.0},
        "games": 8192,
        "canary": 10**6,
        "mtl": (32, 32, 8, 16, 16, 60, 5, 128, 2, 32, 0.25),
        "epsilons": EPSILONS,
    },
    "quick": {
        "game": {"tasks": 4, "samples": 4, "dim": 16, "challenge": 2, "task_std": 3.0},
        "games": 2048,
        "canary": 10**5,
        "mtl": (16, 16, 8, 8, 8, 12, 2, 64, 1, 8, 0.5),
        "epsilons": (1.0, math.inf),
    },
}
OPTIONS = (
    Option("--size", str, "default or quick (the --quick flag sets quick)", None, tuple(SIZES)),
    Option("--delta", float, f"delta of every epsilon (default {DELTA})"),
)
QUICK = {"size": "quick"}


def _mtl_configs(size: dict):
    from mtl_tracing.data.synthetic import SyntheticConfig
    from mtl_tracing.experiments.pipeline import AttackConfig, PipelineConfig
    from mtl_tracing.victims.mtl import TrainConfig

    T, d, m, N, H, ep, warm, hidden, runs, trials, q = size["mtl"]
    cfg = PipelineConfig(
        data=SyntheticConfig(tasks=T, dim=d, embed_dim=m, samples=N, holdout=H),
        train=TrainConfig(
            epochs=ep, task_batch=max(1, T // 4), hidden=hidden, warm_start_epochs=warm
        ),
        attack=AttackConfig(strong_k=min(8, N), weak_k=min(8, H), trials=trials, num_resamples=100),
        runs=runs,
    )
    return cfg, q


def _panel_a(key, game_cfg, games, delta):
    import jax
    from scipy import stats

    from mtl_tracing import audit, gaussian

    fpr_grid = np.geomspace(1e-3, 1.0 - 1e-9, 60)
    rows, arrays = [], {"fpr_grid": fpr_grid}
    # The clip that (almost) never binds: ||xbar_i - mu_bar||^2 ~ (sbar^2 + s^2/N) chi2_d.
    spread = game_cfg.task_std**2 + game_cfg.sample_std**2 / game_cfg.samples
    c_star = math.sqrt(spread * stats.chi2.isf(1e-6, game_cfg.dim))
    for i, z in enumerate(Z_GRID):
        clipped = gaussian.DPRelease(clip=CLIP, noise_multiplier=z)
        plain = gaussian.DPRelease(release_noise_std=z * CLIP / game_cfg.tasks)
        free = gaussian.DPRelease(release_noise_std=z * c_star / game_cfg.tasks)
        lrt = {
            name: (gaussian.lrt_roc(game_cfg, "strong", fpr_grid, r), gaussian.lrt_mu_profile(
                game_cfg, "strong", fpr_grid[fpr_grid < 0.999], r))
            for name, r in (("lrt", plain), ("lrt_free", free))
        }  # fmt: skip
        arrays[f"z{i}_lrt_tpr"], arrays[f"z{i}_lrt_free_tpr"] = lrt["lrt"][0], lrt["lrt_free"][0]
        sc = gaussian.simulate_release(
            jax.random.fold_in(key, i), game_cfg, clipped, games=games, sampler="faithful"
        )
        s_in, s_out = audit.game_trials(np.asarray(sc.strong_in), np.asarray(sc.out))
        w_in, _ = audit.game_trials(np.asarray(sc.weak_in), np.asarray(sc.out))
        t = np.quantile(s_out, 1.0 - fpr_grid[fpr_grid < 0.999])
        sim_fpr = (s_out[None, :] > t[:, None]).mean(1)
        sim_tpr = (s_in[None, :] > t[:, None]).mean(1)
        arrays[f"z{i}_exact_tpr"] = np.asarray(
            gaussian.release_roc(game_cfg, plain, "strong", fpr_grid)
        )
        arrays[f"z{i}_gdp_tpr"] = audit.gdp_tradeoff(fpr_grid, clipped.mu)
        arrays[f"z{i}_sim_fpr"], arrays[f"z{i}_sim_tpr"] = sim_fpr, sim_tpr
        tracing = audit.audit(s_in, s_out, delta=delta)
        tracing_weak = audit.audit(w_in, s_out, delta=delta)
        rows.append(
            {
                "noise_multiplier": z,
                "mu": clipped.mu,
                "epsilon": clipped.epsilon(delta),
                "unclipped_exact_auc": gaussian.release_auc(game_cfg, plain, "strong"),
                "max_sim_excess_over_gdp": float(
                    np.max(sim_tpr - audit.gdp_tradeoff(sim_fpr, clipped.mu))
                ),
                "lrt_unclipped_exact_auc": gaussian.lrt_auc(game_cfg, "strong", plain),
                "lrt_unclipped_mu_eff": [
                    float(np.min(lrt["lrt"][1])),
                    float(np.max(lrt["lrt"][1])),
                ],
                "nonbinding_clip": c_star,
                "lrt_nonbinding_mu_eff": [
                    float(np.min(lrt["lrt_free"][1])),
                    float(np.max(lrt["lrt_free"][1])),
                ],
                "lrt_nonbinding_max_excess_over_gdp": float(
                    np.max(lrt["lrt_free"][0] - audit.gdp_tradeoff(fpr_grid, clipped.mu))
                ),
                "tracing_audit": tracing.to_dict(),
                "tracing_audit_weak": tracing_weak.to_dict(),
            }
        )
    return rows, arrays


def _canary(key, trials, delta):
    import jax

    from mtl_tracing import audit

    rows = []
    for i, z in enumerate(Z_GRID):
        a, b = audit.canary_scores(
            jax.random.fold_in(key, i), clip=CLIP, noise_multiplier=z, trials=trials
        )
        r = audit.audit(np.asarray(a), np.asarray(b), delta=delta)
        rows.append(
            {
                "noise_multiplier": z,
                "mu": 2.0 / z,
                "epsilon": float(audit.gdp_epsilon(2.0 / z, delta)),
                "audit": r.to_dict(),
            }
        )
    return rows


def _one_run(scores, T: int, delta: float) -> dict:
    """One-run audit of run 0 from per-task mean variance-attack scores (strong adversary)."""
    from mtl_tracing import audit

    g = scores["strong"].variance
    s = np.r_[np.asarray(g.scores_in[0]).mean(-1), np.asarray(g.scores_out[0]).mean(-1)]
    inc = np.r_[np.ones(T, bool), np.zeros(T, bool)]
    k = max(1, T // 4)
    r = audit.one_run_audit(s, inc, guesses_in=k, guesses_out=k, delta=delta)
    return r._asdict()


def _panel_b(key, size, delta, progress, dtype):
    import jax

    from mtl_tracing.experiments import pipeline as mc
    from mtl_tracing.victims import accounting
    from mtl_tracing.victims.dp import DPConfig, DPSGDTrainer

    cfg, q = _mtl_configs(size)
    rows = []
    for i, eps in enumerate(size["epsilons"]):
        probe = DPSGDTrainer(cfg.train, cfg.data.embed_dim, DPConfig(q, 0.0, CLIP))
        z = accounting.calibrate_noise(eps, q, probe.noisy_steps(), delta)
        trainer = DPSGDTrainer(cfg.train, cfg.data.embed_dim, DPConfig(q, z, CLIP))
        if progress:
            print(f"[dp_defence] epsilon={eps} z={z:.3f}", flush=True)
        res = mc.run_pipeline(
            jax.random.fold_in(key, i), cfg, dtype=dtype, progress=progress, trainer=trainer
        )
        steps = trainer.noisy_steps()
        rows.append(
            {
                "target_epsilon": eps,
                "epsilon": trainer.epsilon(delta),
                "noise_multiplier": z,
                "sampling_rate": q,
                "noisy_steps": steps,
                "clt_mu": accounting.clt_mu(q, z, steps),
                "attacks": res.summary["attacks"],
                "heldout_accuracy": res.summary["heldout_accuracy"],
                "one_run_audit": _one_run(res.scores, cfg.data.tasks, delta),
            }
        )
    return rows, cfg


def run(
    out_dir,
    *,
    seed: int = 0,
    progress: bool = True,
    dtype=None,
    size: str = "default",
    delta: float = DELTA,
) -> Path:
    """Compute the three panels; write ``dp_defence.json`` and ``.npz`` into ``out_dir``."""
    import logging

    import jax

    from mtl_tracing import gaussian, results
    from mtl_tracing._validate import check_choice, check_int, check_probability

    logging.getLogger("absl").setLevel(logging.ERROR)  # dp_accounting's RDP order warnings
    size_name = check_choice("size", size, tuple(SIZES))
    sz = SIZES[size_name]
    delta = check_probability("delta", delta)
    seed = check_int("seed", seed, low=0)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    root = jax.random.key(seed)
    game_cfg = gaussian.GaussianGameConfig(**sz["game"])
    game_rows, arrays = _panel_a(jax.random.fold_in(root, 0), game_cfg, sz["games"], delta)
    canary_rows = _canary(jax.random.fold_in(root, 1), sz["canary"], delta)
    mtl_rows, cfg = _panel_b(jax.random.fold_in(root, 2), sz, delta, progress, dtype)
    payload = {
        "delta": delta,
        "clip": CLIP,
        "size": size_name,
        "game": {"config": game_cfg.to_dict(), "games": sz["games"], "rows": game_rows},
        "canary": {"trials": sz["canary"], "rows": canary_rows},
        "mtl": {"config": cfg.to_dict(), "rows": mtl_rows},
        "metadata": results.run_metadata(seed=seed, size=size_name, delta=delta),
    }
    np.savez_compressed(out / NPZ_NAME, **arrays)
    results.write_json(out / JSON_NAME, payload)
    return out


def load(out_dir):
    """``(json payload, npz arrays)``."""
    from mtl_tracing.experiments.pipeline import load as _load

    return _load(out_dir, JSON_NAME, NPZ_NAME)


def _f(x) -> float:
    """A JSON number back to float: the writer stores inf as null."""
    return math.inf if x is None else float(x)


def plot(out_dir) -> list[Path]:
    """Redraw the figure from the data in ``out_dir`` (:mod:`.dp_defence_figure`)."""
    from mtl_tracing.experiments.dp_defence_figure import draw

    return draw(out_dir)


def headline(payload: dict) -> str:
    """Canary vs average-case audits and the DP-SGD sweep, as a short table."""
    lines = ["z     mu    eps   canary mu_lb  tracing mu_lb  canary eps_lb  tracing eps_lb"]
    for c, g in zip(payload["canary"]["rows"], payload["game"]["rows"], strict=True):
        lines.append(
            f"{c['noise_multiplier']:<5g} {c['mu']:<5.2g} {c['epsilon']:<5.3g} "
            f"{c['audit']['mu_lb']:<13.3f} {g['tracing_audit']['mu_lb']:<14.3f} "
            f"{c['audit']['epsilon_lb']:<14.3f} {g['tracing_audit']['epsilon_lb']:.3f}"
        )
    lines.append("target_eps  z      AUC strong  AUC weak  TPR@1% strong  heldout_acc  1run_lb")
    for r in payload["mtl"]["rows"]:
        v = r["attacks"]["variance"]
        lines.append(
            f"{_f(r['target_epsilon']):<11g} {r['noise_multiplier']:<6.3g} "
            f"{v['strong']['auc']:<11.3f} {v['weak']['auc']:<9.3f} "
            f"{v['strong']['tpr_at_fpr'][0]['tpr']:<14.3f} "
            f"{r['heldout_accuracy']['mean']:<12.3f} {r['one_run_audit']['epsilon_lb']:.3f}"
        )
    return "\n".join(lines)


def check(out_dir) -> list[str]:
    """Audits never exceed the accountant; clipped ROC points stay under the GDP curve
    (a 0.05 allowance for Monte Carlo noise of the empirical points); the exact optimal ROC
    with a non-binding clip stays under it (1e-4: the clip binds with probability <= 8e-6)."""
    problems = []
    try:
        payload, _ = load(out_dir)
    except FileNotFoundError as err:
        return [str(err)]
    for c in payload["canary"]["rows"]:
        if c["audit"]["mu_lb"] > c["mu"] or c["audit"]["epsilon_lb"] > c["epsilon"]:
            problems.append(f"canary z={c['noise_multiplier']}: audit above the accountant")
    for g in payload["game"]["rows"]:
        if g["tracing_audit"]["mu_lb"] > g["mu"]:
            problems.append(f"tracing z={g['noise_multiplier']}: mu_lb above mu")
        if g.get("lrt_nonbinding_max_excess_over_gdp", 0.0) > 1e-4:
            problems.append(f"game z={g['noise_multiplier']}: optimal ROC above the GDP curve")
        if g["max_sim_excess_over_gdp"] > 0.05:
            problems.append(f"game z={g['noise_multiplier']}: ROC above the GDP curve")
    for r in payload["mtl"]["rows"]:
        if r["one_run_audit"]["epsilon_lb"] > _f(r["epsilon"]):
            problems.append(f"DP-SGD eps={r['target_epsilon']}: one-run bound above accountant")
        for adv in ("strong", "weak"):
            auc = r["attacks"]["variance"][adv]["auc"]
            if not 0.0 <= auc <= 1.0:
                problems.append(f"DP-SGD eps={r['target_epsilon']} {adv}: AUC {auc}")
    return problems
