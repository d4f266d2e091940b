#!/usr/bin/env bash
# Shim overhead benchmarks: the same program without and with the shim, alternated in one run on one
# card (A B A B ...), so drift (clocks, temperature) hits both sides alike. See bench/README.md.
#
#   bash bench/run_bench.sh micro   driver_microbench: launch, launch via cudart, 1 MiB alloc/free,
#                                   cuMemGetInfo; BENCH_PAIRS pairs (default 5)
#   bash bench/run_bench.sh train   torch_train_step.py; BENCH_TRAIN_PAIRS pairs (default 3)
#   bash bench/run_bench.sh all     both
#
# "With the shim" means under `xpu-run --mem $BENCH_QUOTA` (default 16GiB: a real quota, so the
# accounting runs, but never reached). Prints each run's RESULT lines tagged mode=base|shim run=N, then
# the CHECK lines of bench/aggregate.py (medians, ratios, targets). BENCH_AA=1 runs both sides without
# the shim (an A/A run: how far apart two identical sides land). Exit 0 when every target is met,
# 77 when PyTorch is missing for `train`, 1 otherwise.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/../tests/gpu/lib.sh"
xpu_locate

what=${1:-all}
quota=${BENCH_QUOTA:-16GiB}
py=${PYTHON:-python3}
raw=$(mktemp /tmp/xpugpu-bench.XXXXXX)
trap 'rm -f "$raw"' EXIT

if [[ ${BENCH_AA:-0} == 1 ]]; then
  XPUGPU_PREFIX=()  # A/A: the "shim" side runs bare too; the ratios show the noise floor
  echo "INFO A/A run (BENCH_AA=1): both sides without the shim"
elif ! xpu_shim_prefix "$quota"; then
  echo "CHECK setup status=FAIL expected=libxpushim.so_or_xpu-run measured=missing"
  exit 1
fi

# run_pairs KIND PAIRS CMD...: PAIRS times "CMD alone" then "CMD under the shim".
run_pairs() {
  local kind=$1 pairs=$2 i mode rc out
  shift 2
  for ((i = 1; i <= pairs; i++)); do
    for mode in base shim; do
      if [[ $mode == base ]]; then
        out=$(timeout -k 5 100 "$@" 2>&1 </dev/null)
      else
        out=$(timeout -k 5 100 "${XPUGPU_PREFIX[@]}" "$@" 2>&1 </dev/null)
      fi
      rc=$?
      echo "--- $kind run $i $mode (exit $rc)"
      grep -v '^RESULT ' <<<"$out" | tail -n 5
      if ((rc == 77)); then
        echo "$out"
        return 77
      fi
      sed -n "s/^RESULT /RESULT kind=$kind mode=$mode run=$i rc=$rc /p" <<<"$out" | tee -a "$raw"
    done
  done
}

status=0
if [[ $what == micro || $what == all ]]; then
  bin=$(xpu_program bench driver_microbench)
  if [[ -z $bin ]]; then
    echo "CHECK micro_setup status=FAIL expected=driver_microbench measured=missing"
    status=1
  else
    run_pairs micro "${BENCH_PAIRS:-5}" "$bin" --launches "${BENCH_LAUNCHES:-200000}"
  fi
fi
if [[ $what == train || $what == all ]]; then
  # A GPU-bound step (~12 ms on an H100): launch-bound toy steps spread 10-15 % between processes,
  # this one 0.4 %, below the 1 % target. BENCH_TRAIN_ARGS overrides the shape.
  # shellcheck disable=SC2086  # word splitting of the argument list is intended
  run_pairs train "${BENCH_TRAIN_PAIRS:-3}" "$py" "$here/torch_train_step.py" --steps 150 --warmup 30 \
    ${BENCH_TRAIN_ARGS:---batch 256 --width 96}
  rc=$?
  if ((rc == 77)); then
    echo "CHECK torch_train_step status=SKIP expected=torch measured=missing"
    [[ $what == train ]] && exit 77
  fi
fi
"$py" "$here/aggregate.py" --raw "$raw" || status=1
exit "$status"
