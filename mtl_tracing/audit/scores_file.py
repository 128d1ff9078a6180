"""Read audit trials from a ``.npz``: ``scores_in`` and ``scores_out``, one IN and one OUT score
per independent trial (two 1-D arrays of one length). Anything else is refused with a
``ValueError`` that says what was found; correlated score matrices (e.g. the (games, T) scores
of a Gaussian game, or an attack's (tasks, trials) scores on one model) are refused too: pick
one pair per independent release first (:func:`mtl_tracing.audit.game_trials`)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from mtl_tracing.audit.bounds import check_trials

__all__ = ["load_trials", "save_trials"]


def load_trials(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(scores_in, scores_out) as float64 1-D arrays; ``ValueError`` on a bad file."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--scores file not found: {str(p)!r}")
    try:
        with np.load(p, allow_pickle=False) as npz:
            if not hasattr(npz, "files"):
                raise ValueError(f"--scores must be a .npz archive, got a plain array in {p}")
            missing = [k for k in ("scores_in", "scores_out") if k not in npz.files]
            if missing:
                raise ValueError(
                    f"--scores must hold 'scores_in' and 'scores_out', missing {missing} "
                    f"(found {sorted(npz.files)})"
                )
            s_in, s_out = npz["scores_in"], npz["scores_out"]
    except ValueError as err:
        if "--scores" in str(err):
            raise
        raise ValueError(f"--scores is not a readable .npz: {p}") from err
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"--scores is not a readable .npz: {p} ({err})") from err
    if s_in.ndim != 1 or s_out.ndim != 1:
        raise ValueError(
            "--scores must hold independent pairs: scores_in and scores_out 1-D (one score per "
            f"independent trial), got shapes {s_in.shape} and {s_out.shape}; for a (games, T) "
            "matrix take one task per game (mtl_tracing.audit.game_trials)"
        )
    return check_trials(s_in, s_out)


def save_trials(path: str | os.PathLike, scores_in, scores_out) -> Path:
    """Write validated trials in the format :func:`load_trials` reads."""
    a, b = check_trials(scores_in, scores_out)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    np.savez(p, scores_in=a, scores_out=b)
    return p
