#!/usr/bin/env bash
# The paper-scale speed measurements on one GPU, as one short script (results to $1):
#   the 1,024-run BC sweep (benchmarks/sweep.py --scale gpu) and HaDES generations at a
#   MinAtar size and the paper's population (benchmarks/hades_speed.py).
set -u
OUT=${1:-/tmp/gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 JAXBC_CACHE_DIR=/tmp/jaxbc_xla
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia_smi.txt"
timeout 60 python3 -c "import jax, flax, optax, evosax, gymnax, brax, distrax, tyro, jaxbc.hades, jaxbc.bc; print(jax.__version__, flax.__version__, jax.devices())" || exit 3
timeout 200 python3 benchmarks/sweep.py --scale gpu --out-dir "$OUT" 2>&1 | tail -3
timeout 420 python3 benchmarks/hades_speed.py --configs minatar64 paper_breakout paper_hopper --generations 3 \
  --timeout-s 200 --out-dir "$OUT" 2>&1 | grep -v Warning | tail -12
