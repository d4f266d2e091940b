#!/usr/bin/env bash
# Compute time-slice benchmarks (the compute issue; bench/README.md). Not run by default: run_all.sh
# runs it only with XPUGPU_COMPUTE=1, or run it alone:  bash bench/run_compute.sh
#
# Scenarios, each COMPUTE_SECONDS (default 8) long; "busy" is compute_loop's busy_fraction, the share
# of the GPU the process got (kernels x kernel time / elapsed):
#   alone          compute_loop without the shim                       -> reference busy B0 (~1.0)
#   share_alone    --compute 30 (share mode), alone                    busy >= 0.9 * B0 (work-conserving)
#   cap_alone      --compute 30 --mode cap, alone                      busy <= 0.30 + tol
#   share_pair     --compute 30 and --compute 70 side by side          busy ~ 0.30 / 0.70 (+-tol)
#   priority       latency client (--priority high, 50 kernels/s of 1 ms) next to a --priority low hog
#                                                                      p99 vs alone: INFO
#   resnet_cap     ResNet-50 training alone vs --compute 50 --mode cap  ratio ~ 0.5 (+-tol)
#   resnet_infer   batch-1 inference at 100/s, alone vs next to a training neighbour
#                  (--priority high vs low)                            p99: INFO
# COMPUTE_TOL (default 0.07) is the absolute tolerance on shares. The thresholds are provisional,
# to be fixed with the compute issue's acceptance text.
# Prints RESULT lines of every process and one CHECK line per expectation; exit 0 if all passed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/../tests/gpu/lib.sh"
xpu_locate

secs=${COMPUTE_SECONDS:-8}
tol=${COMPUTE_TOL:-0.07}
py=${PYTHON:-python3}
loop=$(xpu_program bench compute_loop)
run=$XPUGPU_RUN
work=$(mktemp -d /tmp/xpugpu-compute.XXXXXX)
trap 'rm -rf "$work"' EXIT
failed=0

check() {  # check NAME STATUS EXPECTED MEASURED [NOTE]
  echo "CHECK $1 status=$2 expected=$3 measured=$4${5:+ note=$5}"
  [[ $2 != FAIL ]] || failed=1
}
# field KEY FILE: the value of KEY= on the file's last RESULT line.
field() { grep '^RESULT ' "$2" 2>/dev/null | tail -n1 | grep -o "\b$1=[^ ]*" | cut -d= -f2; }
# judge NAME "AWK-CONDITION on v (and b)" EXPECTED VALUE [BASE]
judge() {
  local st=FAIL
  if [[ -n $4 ]] && awk -v v="$4" -v b="${5:-0}" -v t="$tol" "BEGIN { exit !($2) }"; then st=PASS; fi
  check "$1" "$st" "$3" "${4:-none}"
}
# start NAME CMD...: run in the background, output in $work/NAME.log
start() {
  local name=$1
  shift
  timeout -k 5 $((secs * 3 + 60)) "$@" >"$work/$name.log" 2>&1 </dev/null &
}
show() { local f; for f in "$@"; do echo "--- $f"; cat "$work/$f.log"; done; }

if [[ -z $loop || -z $run ]]; then
  check setup FAIL compute_loop+xpu-run "compute_loop='$loop',xpu-run='$run'"
  exit 1
fi
cl=("$loop" --seconds "$secs" --kernel-us 2000)

start alone "${cl[@]}"; wait
start share_alone "$run" --compute 30 -- "${cl[@]}"; wait
start cap_alone "$run" --compute 30 --mode cap -- "${cl[@]}"; wait
start pair30 "$run" --compute 30 -- "${cl[@]}"
start pair70 "$run" --compute 70 -- "${cl[@]}"
wait
show alone share_alone cap_alone pair30 pair70
b0=$(field busy_fraction "$work/alone.log")
judge alone_runs 'v > 0.5' '>0.5' "$b0"
judge share_alone_work_conserving 'v >= 0.9 * b' ">=0.9*${b0:-?}" "$(field busy_fraction "$work/share_alone.log")" "$b0"
judge cap_alone_capped 'v <= 0.30 + t' "<=0.30+$tol" "$(field busy_fraction "$work/cap_alone.log")"
judge share_pair_30 'v >= 0.30 - t && v <= 0.30 + t' "0.30+-$tol" "$(field busy_fraction "$work/pair30.log")"
judge share_pair_70 'v >= 0.70 - t && v <= 0.70 + t' "0.70+-$tol" "$(field busy_fraction "$work/pair70.log")"

lat=("$loop" --mode latency --seconds "$secs" --kernel-us 1000 --rate 50)
start lat_alone "${lat[@]}"; wait
start hog "$run" --priority low -- "$loop" --seconds "$((secs + 2))" --kernel-us 2000
sleep 1
start lat_high "$run" --priority high -- "${lat[@]}"
wait
show lat_alone hog lat_high
check priority_p99_alone INFO - "$(field p99_ms "$work/lat_alone.log")ms"
check priority_p99_next_to_low_hog INFO - "$(field p99_ms "$work/lat_high.log")ms"

rn=("$py" "$here/resnet50.py")
rs=$((secs * 2))
start rn_alone "${rn[@]}" train --seconds "$rs"; wait
if grep -q '^SKIP' "$work/rn_alone.log"; then
  show rn_alone
  check resnet50 SKIP torch missing
else
  start rn_cap "$run" --compute 50 --mode cap -- "${rn[@]}" train --seconds "$rs"; wait
  start inf_alone "${rn[@]}" infer --seconds "$rs" --rate 100; wait
  start rn_low "$run" --priority low -- "${rn[@]}" train --seconds "$((rs + 10))"
  sleep 8  # let the neighbour reach steady state (import, cuDNN warm-up)
  start inf_high "$run" --priority high -- "${rn[@]}" infer --seconds "$rs" --rate 100
  wait
  show rn_alone rn_cap inf_alone rn_low inf_high
  a=$(field images_per_s "$work/rn_alone.log")
  c=$(field images_per_s "$work/rn_cap.log")
  ratio=$(awk -v a="${a:-0}" -v c="${c:-0}" 'BEGIN { if (a > 0) printf "%.3f", c / a }')
  judge resnet50_cap50_ratio 'v >= 0.5 - t && v <= 0.5 + t' "0.50+-$tol" "$ratio"
  check resnet50_infer_p99_alone INFO - "$(field p99_ms "$work/inf_alone.log")ms"
  check resnet50_infer_p99_high_next_to_low_training INFO - "$(field p99_ms "$work/inf_high.log")ms"
fi
exit "$failed"
