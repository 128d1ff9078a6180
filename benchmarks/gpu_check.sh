#!/usr/bin/env bash
# One prepared GPU check: the whole test suite on the GPU, and the GPU rows of the benchmarks.
#
#   bash benchmarks/gpu_check.sh OUTDIR        (from the repo root; one NVIDIA GPU; <= 8 min)
#
# Needs a Python with JAX (CUDA) and the project's dependencies; dm-pix, dp-accounting and
# dm-tree may come as wheels in $WHEELS (default .whl/), installed with --no-index into
# /tmp/site. The package itself is installed editable without network (--no-deps).
# Two lanes run at once on disjoint CPU cores (taskset): the suite (pytest workers, no GPU
# memory preallocation) and the benchmarks one after another, so the check fits its 8 minutes;
# each step has its own time limit, so one slow step cannot starve the others. Every log goes
# to OUTDIR; OUTDIR/summary.txt lists each step, its exit code and seconds.
set -uo pipefail
out=${1:?usage: bash benchmarks/gpu_check.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.." || exit 2
py=${PYTHON:-python3}
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1 MTL_TRACING_NO_CACHE=1
export TF_CPP_MIN_LOG_LEVEL=2
: >"$out/summary.txt"
t_start=$(date +%s)

deadline=$((t_start + ${GPU_CHECK_BUDGET_S:-465}))  # the whole check ends by then

step() {  # step NAME LIMIT_S CMD...: run CMD within min(LIMIT_S, the time left), log it
  local name=$1 limit=$2 t0 rc left
  shift 2
  t0=$(date +%s)
  left=$((deadline - t0))
  [ "$limit" -gt "$left" ] && limit=$left
  if [ "$limit" -lt 10 ]; then
    echo "$name skipped: the check's time budget is spent" | tee -a "$out/summary.txt"
    return
  fi
  timeout --kill-after=5 "$limit" "$@" >"$out/$name.log" 2>&1
  rc=$?
  echo "$name rc=$rc $(($(date +%s) - t0))s (limit ${limit}s)" | tee -a "$out/summary.txt"
}

# Setup: wheels of what the image lacks, then the package (no network, no build isolation).
wheels=${WHEELS:-.whl}
if compgen -G "$wheels/*.whl" >/dev/null; then
  step wheels 60 "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site "$wheels"/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
step install 90 "$py" -m pip install -q --no-deps --no-build-isolation -e .
step env 60 bash -c "nvidia-smi; $py -c 'import jax, flax, optax, numpy; \
print(\"jax\", jax.__version__, \"flax\", flax.__version__, \"optax\", optax.__version__, \
\"numpy\", numpy.__version__); print(jax.devices())'"

ncpu=$(nproc)
if [ "$ncpu" -ge 8 ]; then  # suite lane: all cores but 4; bench lane: the last 4
  suite_cpus="0-$((ncpu - 5))" bench_cpus="$((ncpu - 4))-$((ncpu - 1))"
  workers=$((ncpu - 4))
else
  suite_cpus="0-$((ncpu - 1))" bench_cpus="0-$((ncpu - 1))" workers=$ncpu
fi

# Lane 1: the whole suite on the GPU.
(step suite 400 taskset -c "$suite_cpus" "$py" -m pytest -q -p no:cacheprovider \
  -n "$workers" --dist loadfile --durations=25 tests) &
suite_pid=$!

# Lane 2: the benchmarks' GPU rows, one at a time.
b() { step "$1" "$2" taskset -c "$bench_cpus" "${@:3}"; }
b bench_dp 90 "$py" benchmarks/bench_dp.py --repeats 20
b bench_game 90 "$py" benchmarks/bench_game.py --skip-e2e
b bench_bootstrap 90 "$py" benchmarks/bench_bootstrap.py --repeats 5
b bench_attacks 60 "$py" benchmarks/bench_attacks.py
b bench_train 60 "$py" benchmarks/bench_train.py --epochs 20 --runs 1,4,16
b bench_maml 120 "$py" benchmarks/bench_maml.py --quick --trials 256 --loop-trials 4
b bench_real 200 "$py" benchmarks/bench_real.py --cells femnist,so-personalization \
  --epochs 2 --variants conv=auto,loop_safe --json "$out/bench_real.json"
b biggame_faithful 120 "$py" -m mtl_tracing game --sampler faithful --tasks 20000 \
  --dim 20000 --samples 8 --challenge 2 --games 2 --task-std 1 --sample-std 1 --seed 1 \
  --json "$out/biggame_faithful.json"
b biggame_sufficient 60 "$py" -m mtl_tracing game --tasks 200000 --samples 2 \
  --dim 200000 --challenge 1 --games 2 --task-std 1 --sample-std 1 --seed 1 \
  --json "$out/biggame_sufficient.json"

wait "$suite_pid"
grep -E "passed|failed|error" "$out/suite.log" | tail -3 | tee -a "$out/summary.txt"
echo "total $(($(date +%s) - t_start))s" | tee -a "$out/summary.txt"
