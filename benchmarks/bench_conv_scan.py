"""Benchmark: a convolutional training step inside ``lax.scan`` vs outside, XLA's convolution
against ``victims.encoders.loop_safe_conv`` (the ResNet encoders' convolution).

XLA:CPU lowers a convolution's kernel gradient to a slow loop nest when the step is the body
of a loop (jax-ml/jax#12868); the real-data job trains its epochs as such scans. One SGD step
of a 3-convolution net (1 -> 16 -> 32 -> 64 channels, strides 1, 2, 2, global average pool,
a 10-way softmax head) on ``--batch`` images of 28 x 28, float32, best of ``--repeats``:
jitted on its own, and as the body of a length-1 ``lax.scan``, with each convolution.

Run: ``.venv/bin/python benchmarks/bench_conv_scan.py [--batch 512] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
from _timing import best_time
from jax import lax

from mtl_tracing.victims.encoders import _NHWC, loop_safe_conv


def make_step(conv):
    def loss(p, x, y):
        h = x
        for w, s in zip(p[:3], (1, 2, 2), strict=True):
            h = jax.nn.relu(conv(h, w, (s, s), "SAME", dimension_numbers=_NHWC))
        logits = h.mean((1, 2)) @ p[3]
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(y.shape[0]), y])

    def step(p, xy):
        g = jax.grad(loss)(p, *xy)
        return [a - 0.01 * b for a, b in zip(p, g, strict=True)], None

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    ks = jax.random.split(jax.random.key(0), 5)
    shapes = ((3, 3, 1, 16), (3, 3, 16, 32), (3, 3, 32, 64), (64, 10))
    p = [0.1 * jax.random.normal(k, s) for k, s in zip(ks, shapes, strict=False)]
    x = jax.random.normal(ks[4], (args.batch, 28, 28, 1))
    y = jnp.zeros((args.batch,), jnp.int32)
    print(f"machine: {os.cpu_count()} CPUs, jax {jax.__version__}, {jax.devices()[0].platform}")
    print(f"{'convolution':<28} {'plain s':>9} {'in scan s':>10} {'scan / plain':>13}")
    rows = {}
    for name, conv in (("lax.conv_general_dilated", lax.conv_general_dilated),
                       ("loop_safe_conv", loop_safe_conv)):  # fmt: skip
        step = make_step(conv)
        plain = jax.jit(lambda p, x, y, step=step: step(p, (x, y))[0])
        scanned = jax.jit(lambda p, x, y, step=step: lax.scan(step, p, (x, y))[0])
        t_plain = best_time(lambda f=plain: f(p, x, y), args.repeats)
        t_scan = best_time(lambda f=scanned: f(p, x[None], y[None]), args.repeats)
        rows[name] = t_scan
        print(f"{name:<28} {t_plain:>9.3f} {t_scan:>10.3f} {t_scan / t_plain:>12.1f}x")
    ratio = rows["lax.conv_general_dilated"] / rows["loop_safe_conv"]
    print(f"in a scan, loop_safe_conv is {ratio:.1f}x faster than XLA's convolution")


if __name__ == "__main__":
    main()
