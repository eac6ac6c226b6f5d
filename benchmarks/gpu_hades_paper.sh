#!/usr/bin/env bash
# HaDES at the paper's population (2048) on a lent GPU, HaDES-F, one seed, for as many
# generations as the lease allows: Breakout-MinAtar (D=16, SNES) and brax/hopper (D=64,
# Open_ES). Each job runs `benchmarks/hades.py --scale paper` into its own folder under a
# per-job timeout; everything is packed into $1/hades_paper.tgz (the device returns 8 files).
# Env: BREAKOUT_GENS / HOPPER_GENS (generations), ONLY_BREAKOUT=1 (skip hopper),
# SCALE=smoke (check the script on a CPU in seconds).
set -u
OUT=${1:-/tmp/gpu_out}
WORK=/tmp/hades_paper
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1 JAXBC_CACHE_DIR=/tmp/jaxbc_xla
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$WORK/nvidia_smi.txt"
run() {  # env generations timeout
  local tag=${1//\//-}
  timeout "$3" python3 benchmarks/hades.py --scale "${SCALE:-paper}" --envs "$1" --variants F --seeds 1 \
    --generations "$2" --out-dir "$WORK/$tag" >"$WORK/$tag.log" 2>&1
  echo "$1: exit $? after ${SECONDS}s"; tail -4 "$WORK/$tag.log"
}
[ -n "${ONLY_BREAKOUT:-}" ] && { run Breakout-MinAtar "${BREAKOUT_GENS:-100}" 230; exit; }
run Breakout-MinAtar "${BREAKOUT_GENS:-100}" 230
run brax/hopper "${HOPPER_GENS:-40}" 320
tar czf "$OUT/hades_paper.tgz" -C "$WORK" .
