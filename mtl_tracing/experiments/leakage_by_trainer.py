"""Study: task-inference leakage against the training method (same data, same seeds).

For each trainer of the trainer registry (:mod:`mtl_tracing.victims.registry`: standard
Algorithm 3, GMRF-prior MTL, PGD-robust MTL and task-level DP-SGD at one epsilon) the job runs
:func:`run_pipeline` with the *same* key, hence the same synthetic data set (App. A.8), the same
R run keys and the same
attack draws, and reports for both black-box attacks (variance, inner product) and both
adversaries (strong, weak): AUC with a task-resampling CI and TPR at 1% FPR (pooled over runs,
tasks resampled); and utility: held-out IN accuracy and, for every trainer whose state holds
Algorithm 3's model, the robust held-out IN accuracy under the same PGD threat model the
robust trainer trains against (so the robust trainer's gain is visible next to the others).

A registered trainer is in the study (and its flags in the study's) with no change here.

Files: ``leakage_by_trainer.json`` (per-trainer summaries, metadata), ``.npz`` (per-run AUCs),
``leakage_by_trainer.md`` (table) and ``.png`` / ``.pdf`` (figure), the last two from
:func:`plot`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mtl_tracing import results
from mtl_tracing.experiments import checks, registry
from mtl_tracing.options import Option, str_list
from mtl_tracing.threat import IN_ADVERSARIES
from mtl_tracing.victims import registry as trainer_registry

__all__ = [
    "HELP",
    "OPTIONS",
    "QUICK",
    "DEFAULT_CONFIG",  # noqa: F822 (built on first use by __getattr__)
    "QUICK_CONFIG",  # noqa: F822
    "make_trainer",
    "run",
    "plot",
    "load",
    "headline",
    "check",
    "render_markdown",
]

HELP = (
    "Study: attack AUC / TPR and utility of standard, GMRF, robust and DP-SGD MTL on the same data."
)
JSON_NAME = "leakage_by_trainer.json"
NPZ_NAME = "leakage_by_trainer.npz"
MD_NAME = "leakage_by_trainer.md"
STEM = "leakage_by_trainer"


#: Figure 6's default point (T=64, d=64, m=16, N=16, 100 epochs), R = 4 runs.
def _constants() -> dict:
    from mtl_tracing.experiments import pipeline as mc

    return {
        "DEFAULT_CONFIG": mc.DEFAULT_CONFIG.replace(
            train=mc.DEFAULT_CONFIG.train.replace(epochs=100, warm_start_epochs=10)
        ),
        "QUICK_CONFIG": mc.QUICK_CONFIG,
    }


# Built on first use (the pipeline imports JAX; the CLI imports this module to build --help).
__getattr__ = registry.lazy_constants(_constants, ("DEFAULT_CONFIG", "QUICK_CONFIG"))
#: Robust MTRL transfer grid: source tasks T x task clusters K (0 = i.i.d. heads, most diverse;
#: 2 = two tight clusters, least diverse), one run each, target = the OUT tasks.
TRANSFER_GRID = {"tasks": (16, 64), "clusters": (0, 2)}
QUICK_TRANSFER_GRID = {"tasks": (16,), "clusters": (0, 2)}  # QUICK_CONFIG shape: no recompile
TRANSFER_SPREAD = 0.2

#: ``--trainers`` and every registered trainer's own flags (``--eta``, ``--pgd-eps``, ...).
_SUBSET = "comma-separated subset of " + ",".join(trainer_registry.names())
OPTIONS = (Option("--trainers", str_list, _SUBSET), *trainer_registry.options())
QUICK = {"quick": True}


def make_trainer(name: str, config, **options):
    """The registered trainer ``name`` for ``config`` (a ``PipelineConfig``; options as ``run``)."""
    return trainer_registry.build(
        name, config.train, config.data.embed_dim, tasks=config.data.tasks, **options
    )


def _pgd(opts):
    from mtl_tracing.victims.robust import pgd_config

    return pgd_config(norm=opts["norm"], pgd_eps=opts["pgd_eps"], pgd_steps=opts["pgd_steps"])


def _robust_accuracy(trainer, fit_state, data, opts) -> list[float] | None:
    """Per-run robust held-out IN accuracy when the state holds Algorithm 3's model."""
    import jax

    from mtl_tracing.victims.mtl import model_graphdef
    from mtl_tracing.victims.robust import robust_accuracy

    params = getattr(fit_state, "params", None)
    if not isinstance(params, dict) or "head_kernel" not in params:
        return None
    if params["head_kernel"].ndim != 3:  # (R, T, m) only: not per-agent encoders
        return None
    T, d = data.x.shape[0], data.x.shape[-1]
    hidden = trainer.config.hidden
    graphdef = model_graphdef(d, trainer.embed_dim, T, hidden, data.x.dtype)
    pgd = _pgd(opts)
    fn = jax.jit(jax.vmap(lambda p: robust_accuracy(graphdef, p, data.x_heldout,
                                                    data.y_heldout, pgd)))  # fmt: skip
    return np.asarray(fn(params), dtype=np.float64).tolist()


def _transfer(key, config, opts, grid) -> list[dict]:
    """Clean / robust target risk of robust MTRL against source tasks T and diversity K."""
    import jax

    from mtl_tracing.data import synthetic
    from mtl_tracing.data.base import MultitaskData
    from mtl_tracing.victims.mtl import model_graphdef
    from mtl_tracing.victims.robust import RobustTrainer, target_risks
    from mtl_tracing.victims.trainer import fit

    rows = []
    pgd = _pgd(opts)
    shots = min(8, config.data.samples)
    for i, T in enumerate(grid["tasks"]):
        for j, K in enumerate(grid["clusters"]):
            dcfg = config.data.replace(tasks=T, clusters=K, cluster_spread=TRANSFER_SPREAD)
            tcfg = config.train.replace(task_batch=min(config.train.task_batch, T))
            k = jax.random.fold_in(key, 1000 + 10 * i + j)
            k_data, k_train = jax.random.split(k)
            data = synthetic.generate(k_data, dcfg)
            trainer = RobustTrainer(tcfg, dcfg.embed_dim, pgd)
            in_part = MultitaskData(data.x, data.y, None, None, data.x_heldout, data.y_heldout)
            state = jax.tree.map(lambda v: v[0], fit(trainer, k_train, in_part).state)
            gd = model_graphdef(dcfg.dim, dcfg.embed_dim, T, tcfg.hidden, data.x.dtype)
            r = target_risks(gd, state.params, data, pgd, shots=shots)
            row = {"tasks": T, "clusters": K, "shots": shots}
            for name in ("clean_risk", "robust_risk"):
                v = np.asarray(getattr(r, name), np.float64)
                row[name] = float(v.mean())
                row[name + "_se"] = float(v.std(ddof=1) / np.sqrt(v.size))
            rows.append(row)
    return rows


def run(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    progress: bool = True,
    dtype=None,
    quick: bool = False,
    config=None,
    trainers: list[str] | None = None,
    **options,
) -> Path:
    """Run every trainer on the same data and seeds; write the JSON and NPZ.

    ``options``: the registered trainers' keyword options (``eta``, ``pgd_eps``, ...; None
    or absent: the registry's default). The PGD options also set the threat model of the
    robust accuracy reported for every trainer.
    """
    import jax

    from mtl_tracing.experiments import pipeline as mc

    known = trainer_registry.names()
    names = list(known) if trainers is None else list(trainers)
    for name in names:
        if name not in known:
            raise ValueError(f"trainers must be a subset of {tuple(known)}, got {name!r}")
    if not names:
        raise ValueError("trainers must not be empty, got []")
    opts = trainer_registry.defaults()
    unknown = sorted(set(options) - set(opts))
    if unknown:
        raise ValueError(f"options must be among {tuple(opts)}, got {unknown}")
    opts.update({k: v for k, v in options.items() if v is not None})
    _pgd(opts)  # validates eps >= 0, steps >= 1
    default = _constants()["QUICK_CONFIG" if quick else "DEFAULT_CONFIG"]
    config, seed, out = mc.start_job(out_dir, config, default, seed)
    built = {name: make_trainer(name, config, **opts) for name in names}  # validates the rest
    key = jax.random.key(seed)  # the same key for every trainer: same data, runs, challenges
    cells, arrays = {}, {}
    for name in names:
        if progress:
            print(f"[{STEM}] {name}", flush=True)
        trainer = built[name]
        res = mc.run_pipeline(key, config, dtype=dtype, progress=progress, trainer=trainer)
        s = res.summary
        cells[name] = {
            "attacks": s["attacks"],
            "heldout_accuracy": s["heldout_accuracy"],
            "train_accuracy": s["train_accuracy"],
            "robust_heldout_accuracy": _robust_accuracy(
                trainer, res.trained.state, res.data, opts
            ),  # fmt: skip
            "history": s["history"],
        }
        for a in s["attacks"]:
            for adv in IN_ADVERSARIES:
                arrays[f"{name}_{a}_{adv}_auc"] = np.asarray(s["attacks"][a][adv]["auc_per_run"])
    transfer = None
    if "robust" in names:
        if progress:
            print(f"[{STEM}] robust transfer grid", flush=True)
        grid = QUICK_TRANSFER_GRID if quick else TRANSFER_GRID
        transfer = _transfer(key, config, opts, grid)
    payload = {
        "trainers": names,
        "cells": cells,
        "transfer": transfer,
        "options": opts,
        "metadata": results.run_metadata(config=config, seed=seed, **opts),
    }
    return results.save_outputs(out, JSON_NAME, payload, NPZ_NAME, arrays)


#: ``load(out_dir) -> (json payload, npz arrays or None)`` of a finished run.
load = results.outputs_loader(JSON_NAME, NPZ_NAME)


def _tpr1(cell: dict) -> float:
    rows = cell["tpr_at_fpr"]
    row = min(rows, key=lambda r: abs(r["target_fpr"] - 0.01) if "target_fpr" in r else 0)
    return float(row["tpr"])


def _mean(v) -> str:
    return "-" if v is None else f"{float(np.mean(v)):.3f}"


def render_markdown(payload: dict) -> str:
    """One row per trainer x attack x adversary: AUC [CI], TPR@1%FPR; utility columns."""
    cfg = payload["metadata"]["config"]
    d, o = cfg["data"], payload["options"]
    lines = [
        f"Leakage by training method (synthetic MTL T={d['tasks']}, d={d['dim']}, "
        f"m={d['embed_dim']}, N={d['samples']}; {cfg['train']['epochs']} epochs, "
        f"{cfg['runs']} runs; same data and seeds; GMRF eta={o['eta']}, l1={o['l1']}; "
        f"PGD {o['norm']} eps={o['pgd_eps']}, {o['pgd_steps']} steps)",
        "",
        "| trainer | attack | adversary | AUC [95% CI] | TPR@1%FPR | held-out acc. "
        "| robust held-out acc. |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in payload["trainers"]:
        c = payload["cells"][name]
        for a in c["attacks"]:
            for adv in IN_ADVERSARIES:
                s = c["attacks"][a][adv]
                lines.append(
                    f"| {name} | {a.replace('_', ' ')} | {adv} | {s['auc']:.3f} "
                    f"[{s['auc_ci'][0]:.3f}, {s['auc_ci'][1]:.3f}] | {_tpr1(s):.3f} | "
                    f"{c['heldout_accuracy']['mean']:.3f} | "
                    f"{_mean(c['robust_heldout_accuracy'])} |"
                )
    if payload.get("transfer"):
        lines += [
            "",
            f"Robust MTRL transfer: few-shot linear heads ({payload['transfer'][0]['shots']} "
            "shots) on the frozen robust representation, fresh target tasks (the OUT tasks); "
            f"K task clusters (0 = i.i.d. heads, most diverse; spread {TRANSFER_SPREAD}); "
            "0/1 risk, mean +- SE over target tasks; one run per row.",
            "",
            "| source tasks T | clusters K | clean target risk | robust target risk |",
            "|---|---|---|---|",
        ]
        for r in payload["transfer"]:
            lines.append(
                f"| {r['tasks']} | {r['clusters']} | {r['clean_risk']:.3f} +- "
                f"{r['clean_risk_se']:.3f} | {r['robust_risk']:.3f} +- {r['robust_risk_se']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def plot(out_dir: str | os.PathLike) -> list[Path]:
    """Redraw the table and the figure (AUC with CI per trainer; utility) from the JSON."""
    from mtl_tracing import plotting

    payload, _ = load(out_dir)
    md = Path(out_dir) / MD_NAME
    md.write_text(render_markdown(payload))
    names = payload["trainers"]
    attack_names = list(payload["cells"][names[0]]["attacks"])
    colors = plotting.ADVERSARY_COLORS
    with plotting.style():
        fig, axes = plotting.new_figure(len(attack_names) + 1, 1, width=3.0, height=2.6)
        axes = axes[0]
        x = np.arange(len(names))
        for j, a in enumerate(attack_names):
            ax = axes[j]
            for i, adv in enumerate(IN_ADVERSARIES):
                cs = [payload["cells"][n]["attacks"][a][adv] for n in names]
                auc = np.array([c["auc"] for c in cs])
                lo = auc - np.array([c["auc_ci"][0] for c in cs])
                hi = np.array([c["auc_ci"][1] for c in cs]) - auc
                ax.errorbar(x + (i - 0.5) * 0.2, auc, yerr=[lo, hi], fmt="o", capsize=2,
                            color=colors[adv], label=adv)  # fmt: skip
            ax.axhline(0.5, color="0.5", linestyle=":", linewidth=1.0)
            ax.set_xticks(x, names)
            ax.set(
                ylabel="AUC (task-resampling 95% CI)", title=a.replace("_", " "), ylim=(0.4, 1.02)
            )
            if j == 0:
                ax.legend(loc="best")
        ax = axes[-1]
        acc = [payload["cells"][n]["heldout_accuracy"]["mean"] for n in names]
        rob = [payload["cells"][n]["robust_heldout_accuracy"] for n in names]
        ax.bar(x - 0.2, acc, width=0.4, label="held-out IN acc.", color="#7f8c8d")
        ax.bar(x + 0.2, [np.nan if r is None else np.mean(r) for r in rob], width=0.4,
               label="robust (PGD) acc.", color="#d35400")  # fmt: skip
        ax.set_xticks(x, names)
        ax.set(ylabel="accuracy", title="utility", ylim=(0.0, 1.0))
        ax.legend(loc="lower right")
        fig.suptitle("Task-inference leakage against the training method (same data, seeds)")
        return [md, *plotting.save_figure(fig, out_dir, STEM)]


def headline(payload: dict) -> str:
    """Variance-attack AUCs and utility per trainer, one line each."""
    lines = []
    for n in payload["trainers"]:
        c = payload["cells"][n]
        v = c["attacks"]["variance"]
        lines.append(
            f"{n:>9}: variance AUC strong {v['strong']['auc']:.3f} weak {v['weak']['auc']:.3f}; "
            f"held-out acc {c['heldout_accuracy']['mean']:.3f}, robust acc "
            f"{_mean(c['robust_heldout_accuracy'])}"
        )
    return "\n".join(lines)


def check(out_dir: str | os.PathLike) -> list[str]:
    """Files present; every AUC finite and inside its own CI in [0, 1]."""
    files = (JSON_NAME, NPZ_NAME, MD_NAME, STEM + ".png", STEM + ".pdf")
    return checks.check_attack_output(
        out_dir, files, lambda out: list(_attacks_by_trainer(load(out)[0]).items())
    )


def _attacks_by_trainer(payload: dict) -> dict:
    return {n: payload["cells"][n]["attacks"] for n in payload["trainers"]}
