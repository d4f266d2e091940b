#!/usr/bin/env bash
# Compute time-slice benchmarks: the compute issue's acceptance text (bench/README.md).
#
#   bash bench/run_compute.sh                 everything (~3.2 min on an H100)
#   COMPUTE_ONLY="solo pair" bash bench/run_compute.sh
#
# Scenarios (COMPUTE_ONLY picks a subset; solo is needed by every compute_loop ratio):
#   gate      driver_microbench without vs with the shim (xpu-run --compute 100: the gate is on
#             but uncontended), 3 pairs alternated; launch within +2 % (judged in-process)
#   (calibration, before the first compute_loop scenario: `compute_loop --calibrate` once, alone,
#             finds the iteration count for which one kernel takes COMPUTE_KERNEL_US; every
#             compute_loop process below runs that identical fixed-work kernel)
#   solo      one compute_loop, no shim: the solo throughput every ratio below is divided by
#   pair      30/70 share under the shim, and the same two processes without the shim (plain
#             sharing); an `xpu-run status --json` snapshot is taken mid-window
#   quad      10/20/30/40 share under the shim, and four plain processes
#   cap       --compute 30 --mode cap, alone: 30 +- 1 % of solo
#   conserve  --compute 30 (share) beside an idle --compute 70 process: >= 97 % of solo
#   priority  ResNet-50 batch-1 inference at COMPUTE_RATE req/s and ResNet-50 training: without the
#             shim (inference alone, training alone, both: plain sharing), then under the shim
#             (inference --priority high alone, then beside training --priority low: the judged
#             row, default scheduler tunables), then once per COMPUTE_PRIO_VARIANTS entry the
#             "both" phase again with XPU_SCHED_TUNABLES=ENTRY in both processes (INFO rows)
# Co-located processes start together: each one warms up, touches a ready file and waits; the
# script then writes one start instant (CLOCK_REALTIME) into the scenario's go file, and every
# process measures the same wall window (compute_loop.cu, resnet50.py explain the windows).
#
# Knobs: COMPUTE_WINDOW_S (6) COMPUTE_WARMUP_S (1) COMPUTE_TAIL_S (0.5) COMPUTE_KERNEL_US (1000: the
# calibration's target) COMPUTE_ITERS (empty: calibrate; N: skip the calibration, use N iterations)
# COMPUTE_DEPTH (4) COMPUTE_PHASE_S (8, each ResNet phase) COMPUTE_RATE (100)
# COMPUTE_PRIO_VARIANTS (space-separated XPU_SCHED_TUNABLES values, one priority run each; empty:
# none) COMPUTE_BUDGET_S (290: a scenario that would end later is skipped, SKIP) COMPUTE_OUT (where
# compute.json, compute.md and the status snapshot go; default $OUT, else ./compute-out) BENCH_AA=1
# (A/A: no shim anywhere, every verdict INFO). Thresholds: see aggregate.py --help
# (COMPUTE_AGGREGATE_ARGS passes options). An XPU_SCHED_TUNABLES inherited from the environment is
# dropped: every scenario runs the defaults unless it is a COMPUTE_PRIO_VARIANTS run.
# Prints each process's output, one CHECK line per criterion (bench/aggregate.py), the table; exit 0
# when nothing FAILed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/../tests/gpu/lib.sh"
xpu_locate

win=${COMPUTE_WINDOW_S:-6}
warm=${COMPUTE_WARMUP_S:-1}
tail_s=${COMPUTE_TAIL_S:-0.5}
kus=${COMPUTE_KERNEL_US:-1000}
depth=${COMPUTE_DEPTH:-4}
phase=${COMPUTE_PHASE_S:-8}
rate=${COMPUTE_RATE:-100}
iters=${COMPUTE_ITERS:-}
[[ -z $iters || $iters =~ ^[1-9][0-9]*$ ]] || { echo "COMPUTE_ITERS='$iters' is not a positive integer" >&2; exit 2; }
# Around the defaults (idle_grace 500us, low_inflight 250us): a shorter low-priority in-flight
# bound, a shorter idle grace, and both.
default_variants="low_inflight=150us idle_grace=250us low_inflight=150us,idle_grace=250us"
variants=${COMPUTE_PRIO_VARIANTS-$default_variants}
budget=${COMPUTE_BUDGET_S:-290}
only=${COMPUTE_ONLY:-}
aa=${BENCH_AA:-0}
out=${COMPUTE_OUT:-${OUT:-$PWD/compute-out}}
py=${PYTHON:-python3}
loop=$(xpu_program bench compute_loop)
micro=$(xpu_program bench driver_microbench)
run=$XPUGPU_RUN
shim=$XPUGPU_SHIM
mkdir -p "$out"
work=$(mktemp -d /tmp/xpugpu-compute.XXXXXX)
raw=$work/raw.txt
: >"$raw"
t_start=$(date +%s)
# shellcheck disable=SC2064  # expand now: the path is fixed
trap "rm -rf '$work'" EXIT

# aggregate: CHECK lines, compute.json, compute.md from whatever was measured so far.
aggregate() {
  cp "$raw" "$out/compute_raw.txt"
  # shellcheck disable=SC2086  # word splitting of the extra options is intended
  "$py" "$here/aggregate.py" --compute "$raw" --out "$out" ${COMPUTE_AGGREGATE_ARGS:-}
}
# Cut short (the suite's timeout, Ctrl-C): still report what was measured.
trap 'say "interrupted: aggregating what was measured"; aggregate; exit 124' TERM INT

say() { echo "=== [compute +$(($(date +%s) - t_start))s] $*"; }
selected() { [[ -z $only || " $only " == *" $1 "* ]]; }
now_plus() { awk -v t="$(date +%s.%N)" -v d="$1" 'BEGIN { printf "%.6f", t + d }'; }

# shim_prefix XPU-RUN-FLAGS...: the array SP that runs a command under the shim with these compute
# flags: xpu-run when built, else LD_PRELOAD + the XPU_* variables; empty in an A/A run.
SP=()
shim_prefix() {
  SP=()
  [[ $aa != 1 ]] || return 0
  if [[ -n $run ]]; then
    SP=("$run" "$@" --)
    return 0
  fi
  SP=(env LD_PRELOAD="$shim")
  while [[ $# -gt 1 ]]; do
    case $1 in
      --compute) SP+=(XPU_COMPUTE="$2") ;;
      --mode) SP+=(XPU_COMPUTE_MODE="$2") ;;
      --priority) SP+=(XPU_PRIORITY="$2") ;;
    esac
    shift 2
  done
}

# A scenario: begin NAME SECONDS (returns 1, and records a skip, when the budget cannot fit it),
# then proc TAGS CMD... per process (in the background), then go, then end_scenario.
sc="" sc_t0=0 sc_pids=() sc_names=() sc_tags=()
begin() {
  local used=$(($(date +%s) - t_start))
  if ((used + $2 > budget)); then
    say "scenario $1: SKIPPED, needs ~$2 s, $((budget - used)) s of COMPUTE_BUDGET_S=$budget left"
    echo "RESULT scenario=$1 skipped=time_budget" >>"$raw"
    return 1
  fi
  sc=$1 sc_t0=$(date +%s.%N) sc_pids=() sc_names=() sc_tags=()
  say "scenario $sc (~$2 s)"
}
# proc "name=N shim=0|1 configured=PCT cmode=share|cap priority=P" CMD...: the ready/go options are
# appended to CMD (both programs take them). The process gets a timeout of its own.
proc() {
  local tags=$1 name
  shift
  name=$(grep -o 'name=[^ ]*' <<<"$tags" | cut -d= -f2)
  echo "+ [$name] $*"
  timeout -k 5 "$ptmo" "$@" --ready-file "$work/$sc.$name.ready" --go-file "$work/$sc.go" \
    >"$work/$sc.$name.log" 2>&1 </dev/null &
  sc_pids+=($!)
  sc_names+=("$name")
  sc_tags+=("$tags")
}
# go READY_TIMEOUT: wait until every process is ready (or has died), then publish the start.
go() {
  local deadline=$((SECONDS + $1)) i ready alive
  while :; do
    ready=0 alive=0
    for i in "${!sc_names[@]}"; do
      if [[ -f $work/$sc.${sc_names[$i]}.ready ]]; then
        ready=$((ready + 1))
      elif kill -0 "${sc_pids[$i]}" 2>/dev/null; then
        alive=$((alive + 1))
      fi
    done
    ((ready == ${#sc_names[@]} || alive == 0 || SECONDS >= deadline)) && break
    sleep 0.05
  done
  ((ready == ${#sc_names[@]})) || say "only $ready of ${#sc_names[@]} processes got ready"
  now_plus 0.3 >"$work/$sc.go.tmp" && mv "$work/$sc.go.tmp" "$work/$sc.go"
}
end_scenario() {
  local i rc
  for i in "${!sc_pids[@]}"; do
    wait "${sc_pids[$i]}"
    rc=$?
    echo "--- [$sc ${sc_names[$i]}] ${sc_tags[$i]} exit $rc"
    cat "$work/$sc.${sc_names[$i]}.log"
    if grep -q '^RESULT ' "$work/$sc.${sc_names[$i]}.log"; then
      sed -n "s/^RESULT /RESULT scenario=$sc ${sc_tags[$i]} rc=$rc /p" "$work/$sc.${sc_names[$i]}.log" >>"$raw"
    elif grep -q '^SKIP' "$work/$sc.${sc_names[$i]}.log"; then
      echo "RESULT scenario=$sc ${sc_tags[$i]} rc=$rc skipped=$(grep -m1 '^SKIP' "$work/$sc.${sc_names[$i]}.log" | tr ' =' '_:')" >>"$raw"
    else
      echo "RESULT scenario=$sc ${sc_tags[$i]} rc=$rc error=no_result" >>"$raw"
    fi
  done
  local took
  took=$(awk -v a="$sc_t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  echo "RESULT scenario=$sc elapsed_s=$took" >>"$raw"
  say "scenario $sc done in $took s"
}

if [[ -z $loop ]]; then
  echo "CHECK compute_setup status=FAIL expected=compute_loop measured=missing note=not built under $XPUGPU_BUILD_DIR"
  exit 1
fi
if [[ $aa != 1 && -z $run && -z $shim ]]; then
  echo "CHECK compute_setup status=FAIL expected=xpu-run_or_libxpushim.so measured=missing"
  exit 1
fi
[[ $aa != 1 ]] || say "A/A run (BENCH_AA=1): every 'shim' process runs without the shim; verdicts are INFO"
say "compute_loop=$loop xpu-run=${run:-none} shim=${shim:-none} out=$out budget=${budget}s"
if [[ -n ${XPU_SCHED_TUNABLES+x} ]]; then
  say "ignoring the inherited XPU_SCHED_TUNABLES='$XPU_SCHED_TUNABLES' (defaults everywhere; use COMPUTE_PRIO_VARIANTS)"
  unset XPU_SCHED_TUNABLES
fi

span=$(awk -v a="$warm" -v b="$win" -v c="$tail_s" 'BEGIN { printf "%d", a + b + c + 0.999 }')
ptmo=$((span + 60))
est=$((span + 4))

# --- gate: launch cost with the gate on but uncontended -------------------------------------------
if selected gate && begin gate 25; then
  if [[ -z $micro ]]; then
    echo "RESULT scenario=gate error=driver_microbench_missing" >>"$raw"
  else
    shim_prefix --compute 100
    for i in 1 2 3; do
      for mode in base shim; do
        if [[ $mode == base ]]; then pre=(); else pre=("${SP[@]}"); fi
        o=$(timeout -k 5 60 "${pre[@]}" "$micro" --ops launch,launch_rt,inproc --launches 100000 \
          --pairs 100 --infos 1000 2>&1 </dev/null)
        rc=$?
        echo "--- gate run $i $mode (exit $rc)"
        grep -v '^RESULT ' <<<"$o" | tail -n 5
        sed -n "s/^RESULT /RESULT scenario=gate kind=micro mode=$mode run=$i rc=$rc /p" <<<"$o" | tee -a "$raw"
      done
    done
  fi
  say "scenario gate done"
fi

# --- calibration: one fixed-work kernel for every compute_loop process ----------------------------
# `compute_loop --calibrate`, alone on the GPU (no shim): the iteration count for which one kernel
# takes $kus us back to back. Every compute_loop process then gets --iters N --kernel-us T (T, the
# measured time, only scales busy_fraction), so all of them run the identical kernel.
calibrated=0
cl=()
if selected solo || selected pair || selected quad || selected cap || selected conserve; then
  if [[ -n $iters ]]; then
    calibrated=1
    cl=("$loop" --iters "$iters" --kernel-us "$kus")
    echo "RESULT scenario=calibrate name=calibrate shim=0 rc=0 iters=$iters kernel_us=$kus" \
      "target_us=$kus given=COMPUTE_ITERS error=cudaSuccess" >>"$raw"
    say "calibration skipped: COMPUTE_ITERS=$iters (kernel time taken as $kus us)"
  elif begin calibrate 15; then
    o=$(timeout -k 5 60 "$loop" --calibrate --kernel-us "$kus" 2>&1 </dev/null)
    rc=$?
    printf '%s\n' "$o"
    line=$(grep -m1 '^CALIBRATION ' <<<"$o")
    c_iters=$(grep -o ' iters=[0-9]*' <<<"$line" | cut -d= -f2)
    c_us=$(grep -o ' kernel_us=[0-9.]*' <<<"$line" | cut -d= -f2)
    c_err=$(grep -o ' error=[^ ]*' <<<"$line" | cut -d= -f2)
    if [[ $rc == 0 && $c_err == cudaSuccess && $c_iters -gt 0 && -n $c_us ]]; then
      calibrated=1
      cl=("$loop" --iters "$c_iters" --kernel-us "$c_us")
      echo "RESULT scenario=calibrate name=calibrate shim=0 rc=$rc ${line#CALIBRATION }" >>"$raw"
    else
      echo "RESULT scenario=calibrate name=calibrate shim=0 rc=$rc error=${c_err:-no_calibration_line}" >>"$raw"
    fi
    say "calibration done in $(awk -v a="$sc_t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s: ${cl[*]:1}"
  fi
fi
cl+=(--depth "$depth" --warmup "$warm" --window "$win" --tail "$tail_s")
# loop_ok NAME: compute_loop scenarios need the calibration; without it they are recorded skipped.
loop_ok() {
  ((calibrated)) && return 0
  echo "RESULT scenario=$1 skipped=no_calibration" >>"$raw"
  say "scenario $1: SKIPPED, no calibration"
  return 1
}

# --- compute_loop scenarios -----------------------------------------------------------------------
if selected solo && loop_ok solo && begin solo "$est"; then
  proc "name=solo shim=0" "${cl[@]}"
  go 30
  end_scenario
fi

if selected pair && loop_ok pair_plain && begin pair_plain "$est"; then
  proc "name=p30 shim=0" "${cl[@]}"
  proc "name=p70 shim=0" "${cl[@]}"
  go 30
  end_scenario
fi
if selected pair && loop_ok pair_shim && begin pair_shim "$est"; then
  shim_prefix --compute 30 --mode share
  proc "name=p30 shim=1 configured=30 cmode=share" "${SP[@]}" "${cl[@]}"
  shim_prefix --compute 70 --mode share
  proc "name=p70 shim=1 configured=70 cmode=share" "${SP[@]}" "${cl[@]}"
  go 30
  # One `xpu-run status --json` snapshot, mid-window; a failure is recorded, never fatal.
  sleep "$(awk -v a="$warm" -v b="$win" 'BEGIN { printf "%.2f", 0.3 + a + b / 2 }')"
  snap=$out/compute_status_30_70.json
  if [[ -n $run ]]; then
    s_out=$(timeout 10 "$run" status --json 2>&1 </dev/null)
    s_rc=$?
  else
    s_out="xpu-run not built" s_rc=127
  fi
  printf '%s\n' "$s_out" >"$work/status.txt"
  "$py" - "$snap" "$s_rc" "$work/status.txt" <<'EOF'
import json, sys
path, rc = sys.argv[1], int(sys.argv[2])
with open(sys.argv[3], encoding="utf-8", errors="replace") as f:
    text = f.read()
try:
    doc = json.loads(text) if rc == 0 else None
except ValueError:
    doc = None
if doc is None:
    doc = {"error": text.strip(), "rc": rc, "command": "xpu-run status --json"}
with open(path, "w", encoding="utf-8") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
EOF
  echo "RESULT scenario=pair_shim status_snapshot=$snap status_rc=$s_rc" >>"$raw"
  say "status snapshot (rc $s_rc) -> $snap"
  end_scenario
fi

if selected quad && loop_ok quad_plain && begin quad_plain "$est"; then
  for p in 10 20 30 40; do proc "name=q$p shim=0" "${cl[@]}"; done
  go 30
  end_scenario
fi
if selected quad && loop_ok quad_shim && begin quad_shim "$est"; then
  for p in 10 20 30 40; do
    shim_prefix --compute "$p" --mode share
    proc "name=q$p shim=1 configured=$p cmode=share" "${SP[@]}" "${cl[@]}"
  done
  go 30
  end_scenario
fi

if selected cap && loop_ok cap && begin cap "$est"; then
  shim_prefix --compute 30 --mode cap
  proc "name=cap30 shim=1 configured=30 cmode=cap" "${SP[@]}" "${cl[@]}"
  go 30
  end_scenario
fi

if selected conserve && loop_ok conserve && begin conserve "$est"; then
  shim_prefix --compute 30 --mode share
  proc "name=s30 shim=1 configured=30 cmode=share" "${SP[@]}" "${cl[@]}"
  shim_prefix --compute 70 --mode share
  proc "name=idle70 shim=1 configured=70 cmode=share" "${SP[@]}" "${cl[@]}" --mode idle
  go 30
  end_scenario
fi

# --- priority: ResNet-50 inference (high) beside training (low) -----------------------------------
# Without the shim, one pair of processes, three phases of $phase s: inference alone (training idle),
# training alone (inference idle), both (plain sharing). Under the shim, inference --priority high
# alone (training idle), then both (training --priority low): the judged row, default tunables. Then
# once per COMPUTE_PRIO_VARIANTS entry, a fresh pair with XPU_SCHED_TUNABLES=ENTRY runs the "both"
# phase only (the alone references are the ones measured above): INFO rows.
rn=("$py" "$here/resnet50.py")
p1=$phase p2=$((phase * 2)) p3=$((phase * 3))
if selected priority && begin priority_plain $((p3 + 20)); then
  ptmo=$((p3 + 150))
  proc "name=infer shim=0" "${rn[@]}" infer --rate "$rate" --windows "0:$p1,$p2:$p3"
  proc "name=train shim=0" "${rn[@]}" train --windows "$p1:$p2,$p2:$p3"
  go 120
  end_scenario
fi
if selected priority && begin priority_shim $((p2 + 20)); then
  ptmo=$((p2 + 150))
  shim_prefix --priority high
  proc "name=infer shim=1 priority=high" "${SP[@]}" "${rn[@]}" infer --rate "$rate" --windows "0:$p1,$p1:$p2"
  shim_prefix --priority low
  proc "name=train shim=1 priority=low" "${SP[@]}" "${rn[@]}" train --windows "$p1:$p2"
  go 120
  end_scenario
fi
read -r -a variant_list <<<"$variants"
k=0
for v in "${variant_list[@]}"; do
  selected priority || break
  k=$((k + 1))
  if [[ ! $v =~ ^[A-Za-z0-9_.,=]+$ ]]; then
    say "priority variant $k '$v': SKIPPED, not of the form key=value[,key=value...]"
    echo "RESULT scenario=priority_sweep$k tunables=invalid skipped=bad_variant" >>"$raw"
    continue
  fi
  echo "RESULT scenario=priority_sweep$k tunables=$v" >>"$raw"
  begin "priority_sweep$k" $((p1 + 20)) || continue
  say "priority variant $k: XPU_SCHED_TUNABLES=$v"
  ptmo=$((p1 + 150))
  shim_prefix --priority high
  proc "name=infer shim=1 priority=high tunables=$v" env XPU_SCHED_TUNABLES="$v" "${SP[@]}" \
    "${rn[@]}" infer --rate "$rate" --windows "0:$p1"
  shim_prefix --priority low
  proc "name=train shim=1 priority=low tunables=$v" env XPU_SCHED_TUNABLES="$v" "${SP[@]}" \
    "${rn[@]}" train --windows "0:$p1"
  go 120
  end_scenario
  say "priority variant $k ($v): elapsed $(awk -v a="$sc_t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
done

say "all scenarios done; aggregating"
aggregate
rc=$?
say "done (exit $rc)"
exit "$rc"
