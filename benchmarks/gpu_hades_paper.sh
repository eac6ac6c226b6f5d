#!/usr/bin/env bash
# HaDES at the paper's population (2048) on one GPU, one seed, for a fixed number of
# generations, to set beside the official runs' stored curves
# (benchmarks/results/peers/hades_official_stored.csv): Breakout-MinAtar HaDES-F and HaDES-R
# (SNES) and brax/hopper HaDES-F (D=64, Open_ES). Each job runs `benchmarks/hades.py --scale
# paper` into its own folder under a per-job timeout; everything is packed into
# $1/hades_paper.tgz. Env: BREAKOUT_GENS / HOPPER_GENS (generations), ONLY_BREAKOUT=1 (skip
# hopper), SPEED=1 (first, the paper hopper generation split into its fitness program, ES
# ask + tell and the rest: benchmarks/hades_speed.py), SCALE=smoke (check the script on a
# CPU in minutes; it skips hopper).
set -u
OUT=${1:-/tmp/gpu_out}
WORK=/tmp/hades_paper
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1 JAXBC_CACHE_DIR=/tmp/jaxbc_xla
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$WORK/nvidia_smi.txt"
run() {  # env variant generations timeout
  local tag=${1//\//-}_$2
  timeout "$4" python3 benchmarks/hades.py --scale "${SCALE:-paper}" --envs "$1" --variants "$2" --seeds 1 \
    --generations "$3" --out-dir "$WORK/$tag" >"$WORK/$tag.log" 2>&1
  echo "$1 $2: exit $? after ${SECONDS}s"; tail -4 "$WORK/$tag.log"
}
if [ -n "${SPEED:-}" ]; then
  timeout 300 python3 benchmarks/hades_speed.py --configs "$([ "${SCALE:-}" = smoke ] && echo smoke || echo paper_hopper)" \
    --generations 2 --out-dir "$WORK/speed" >"$WORK/speed.log" 2>&1
  echo "speed: exit $? after ${SECONDS}s"; tail -2 "$WORK/speed.log"
fi
run Breakout-MinAtar F "${BREAKOUT_GENS:-40}" 150
run Breakout-MinAtar R "${BREAKOUT_GENS:-40}" 200
# (the smoke scale has no Brax job: SCALE=smoke checks the script up to here)
[ -z "${ONLY_BREAKOUT:-}" ] && [ "${SCALE:-paper}" != smoke ] && run brax/hopper F "${HOPPER_GENS:-40}" 320
tar czf "$OUT/hades_paper.tgz" -C "$WORK" .
