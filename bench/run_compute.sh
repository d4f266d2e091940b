#!/usr/bin/env bash
# Compute time-slice benchmarks: the compute issue's acceptance text (bench/README.md).
#
#   bash bench/run_compute.sh                 everything (~3 min on an H100/H200)
#   COMPUTE_ONLY="solo pair" bash bench/run_compute.sh
#
# Scenarios (COMPUTE_ONLY picks a subset; solo is needed by every compute_loop ratio):
#   gate      driver_microbench without vs with the shim (xpu-run --compute 100: the gate is on
#             but uncontended), 3 pairs alternated; launch within +2 % (judged in-process)
#   gate_high driver_microbench in-process (hook vs libcuda's real function) under --priority high
#             while an idle --priority low compute_loop is joined: the launch path of the highest
#             class beside lower ones (virtual queue, sampled probes), 3 runs; INFO
#   (calibration, before the first compute_loop scenario: `compute_loop --calibrate` once, alone,
#             finds the iteration count for which one kernel takes COMPUTE_KERNEL_US; every
#             compute_loop process below runs that identical fixed-work kernel)
#   solo      one compute_loop, no shim: the solo throughput every ratio below is divided by
#   pair      30/70 share under the shim, and the same two processes without the shim (plain
#             sharing); an `xpu-run status --json` snapshot is taken mid-window
#   quad      10/20/30/40 share under the shim, and four plain processes
#   cap       --compute 30 --mode cap, alone: 30 +- 1 % of solo
#   conserve  --compute 30 (share) beside an idle --compute 70 process: >= 97 % of solo
#   priority  ResNet-50 batch-1 inference at COMPUTE_RATE req/s and ResNet-50 training, one pair
#             of processes without the shim and one under it (inference --priority high, training
#             --priority low, default scheduler tunables), alive for the whole scenario; then
#             COMPUTE_PRIO_ROUNDS rounds, each with back-to-back phases in an order that rotates per
#             round: (a) inference alone without the shim, (b) high with low joined but idle,
#             (c) high beside busy low, (d) both without the shim (plain sharing), training alone;
#             judged on the medians over the rounds ((c) vs (a): p99; training in (c) vs alone).
#             Each COMPUTE_PRIO_VARIANTS entry adds a shim pair with XPU_SCHED_TUNABLES=ENTRY and
#             its own (c) phase per round (INFO rows)
# Co-located processes start together: each one warms up, touches a ready file and waits; the
# script then writes one start instant (CLOCK_REALTIME) into the scenario's go file, and every
# process measures the same wall window (compute_loop.cu, resnet50.py explain the windows).
#
# Knobs: COMPUTE_WINDOW_S (6) COMPUTE_WARMUP_S (1) COMPUTE_TAIL_S (0.5) COMPUTE_KERNEL_US (1000: the
# calibration's target) COMPUTE_ITERS (empty: calibrate; N: skip the calibration, use N iterations)
# COMPUTE_DEPTH (4) COMPUTE_PHASE_S (6, each ResNet phase) COMPUTE_PRIO_SETTLE_S (0.5, not measured
# at each phase's start) COMPUTE_PRIO_ROUNDS (3) COMPUTE_RATE (100) COMPUTE_PRIO_PIN (0; 1: each
# priority process on CPUs of its own, via taskset) COMPUTE_PRIO_VARIANTS (empty;
# space-separated XPU_SCHED_TUNABLES values, a (c) phase per round each, as many as the budget fits
# with every round) COMPUTE_BUDGET_S (290: a scenario that would end later is skipped, SKIP; so is a
# priority round) COMPUTE_OUT (where
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
phase=${COMPUTE_PHASE_S:-6}
rate=${COMPUTE_RATE:-100}
iters=${COMPUTE_ITERS:-}
[[ -z $iters || $iters =~ ^[1-9][0-9]*$ ]] || { echo "COMPUTE_ITERS='$iters' is not a positive integer" >&2; exit 2; }
# XPU_SCHED_TUNABLES variants of the priority scenario: none by default (the time goes to rounds).
# The last sweep (run 7, then defaults idle_grace 500us, low_inflight 250us) was
# "low_inflight=100us low_inflight=100us,idle_grace=250us"; low_inflight is 100us since.
variants=${COMPUTE_PRIO_VARIANTS:-}
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
# Every inference request's latency in the priority scenario (resnet50.py --latency-out), a file
# per process: aggregate.py pools them over the rounds. Cleared so that runs do not mix.
lat_dir=$out/priority_latency
rm -rf "$lat_dir"
t_start=$(date +%s)
# shellcheck disable=SC2064  # expand now: the path is fixed
trap "rm -rf '$work'" EXIT

# aggregate: CHECK lines, compute.json, compute.md from whatever was measured so far.
aggregate() {
  cp "$raw" "$out/compute_raw.txt"
  # shellcheck disable=SC2086  # word splitting of the extra options is intended
  "$py" "$here/aggregate.py" --compute "$raw" --out "$out" --latency-dir "$lat_dir" ${COMPUTE_AGGREGATE_ARGS:-}
}
# Cut short (the suite's timeout, Ctrl-C): still report what was measured. The priority scenario's
# processes (they live for minutes) are stopped and the windows they finished are kept.
prio_live=0
# shellcheck disable=SC2317  # called by the trap
on_interrupt() {
  say "interrupted: aggregating what was measured"
  if ((prio_live)); then
    kill "${sc_pids[@]}" 2>/dev/null
    prio_collect >/dev/null
  fi
  aggregate
  exit 124
}
trap on_interrupt TERM INT

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
# go READY_TIMEOUT: wait_ready READY_TIMEOUT, then publish.
# wait_ready READY_TIMEOUT: wait until every process is ready (or has died).
# publish [END]: write the start instant S (0.3 s ahead) into the go file, and the cut-off END
# (seconds after S; resnet50.py runs no window that would end later) when given.
go() {
  wait_ready "$1"
  publish
}
wait_ready() {
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
}
publish() {
  { now_plus 0.3; [[ -z ${1:-} ]] || printf ' %s' "$1"; } >"$work/$sc.go.tmp" && mv "$work/$sc.go.tmp" "$work/$sc.go"
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

# micro_run SCENARIO MODE RUN [PREFIX...] :: MICROBENCH-ARGS...: one driver_microbench run under
# PREFIX (empty: no shim); prints its tail and appends its RESULT lines, tagged, to the raw file.
# (The separator is not `--`: an xpu-run prefix ends with its own `--`.)
micro_run() {
  local scen=$1 mode=$2 i=$3 pre=() o rc
  shift 3
  while [[ $1 != :: ]]; do
    pre+=("$1")
    shift
  done
  shift
  o=$(timeout -k 5 60 "${pre[@]}" "$micro" "$@" 2>&1 </dev/null)
  rc=$?
  echo "--- $scen run $i $mode (exit $rc)"
  grep -v '^RESULT ' <<<"$o" | tail -n 5
  sed -n "s/^RESULT /RESULT scenario=$scen kind=micro mode=$mode run=$i rc=$rc /p" <<<"$o" | tee -a "$raw"
}

# --- gate: launch cost with the gate on but uncontended -------------------------------------------
if selected gate && begin gate 25; then
  if [[ -z $micro ]]; then
    echo "RESULT scenario=gate error=driver_microbench_missing" >>"$raw"
  else
    shim_prefix --compute 100
    for i in 1 2 3; do
      for mode in base shim; do
        if [[ $mode == base ]]; then pre=(); else pre=("${SP[@]}"); fi
        micro_run gate "$mode" "$i" "${pre[@]}" :: --ops launch,launch_rt,inproc --launches 100000 \
          --pairs 100 --infos 1000
      done
    done
  fi
  say "scenario gate done"
fi

# --- gate_high: launch cost of the highest class beside a joined, idle lower one ------------------
# The low process launches its warm-up kernels (so it is joined: its watcher keeps its presence
# lease) and then waits for the go file; the high one runs the in-process comparison meanwhile.
# Published afterwards, the low process runs a 0.2 s window and exits.
if selected gate_high && begin gate_high 25; then
  if [[ -z $micro ]]; then
    echo "RESULT scenario=gate_high error=driver_microbench_missing" >>"$raw"
  else
    shim_prefix --priority low
    proc "name=idle_low shim=1 priority=low" "${SP[@]}" "$loop" --iters 100 --warmup 0 --window 0.2 --tail 0
    wait_ready 30
    shim_prefix --priority high
    for i in 1 2 3; do
      micro_run gate_high high "$i" "${SP[@]}" :: --ops inproc --launches 100000
    done
    publish
    end_scenario
  fi
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

# --- priority: ResNet-50 inference (high) beside training (low), interleaved rounds ---------------
# Long-lived processes, started once and warmed up side by side (model build and warm-up take ~10 s
# each), all on one start instant S: a pair without the shim (infer_noshim, train_noshim), a pair
# under the shim with the default tunables (infer_high --priority high, train_low --priority low),
# and one more shim pair per COMPUTE_PRIO_VARIANTS entry that the budget allows
# (XPU_SCHED_TUNABLES=ENTRY in both). The timeline is $prio_rounds rounds of back-to-back phases of
# $phase s each (the first $prio_settle s of each not measured); in a phase only the processes named
# below run, every other one stays idle (CUDA initialised, nothing launched):
#   alone        infer_noshim                    (a) the reference
#   shim_both    infer_high + train_low          (c) the judged phase
#   train_alone  train_noshim                    training's solo it/s (the 25 % criterion)
#   plain        infer_noshim + train_noshim     (d) plain sharing
#   shim_idle    infer_high, train_low idle      (b) what the shim costs the high process by itself
#   sweepK       infer_high_sweepK + train_low_sweepK (variant K's (c); INFO)
# Round r (1-based) runs this list rotated by r-1: every phase takes another position in each round,
# and (c) never comes right before (b), also across rounds (a low-priority step that overruns its
# window would land in (b)). Judged on the medians over the rounds (aggregate.py). A round that
# would end after the budget is not run (decided at S: the go file carries a cut-off) and is
# reported SKIP. Each window's RESULT line is copied into the raw file when its round ends.
rn=("$py" "$here/resnet50.py")
prio_ncol=()
# prio_collect: copy the RESULT lines that the priority processes printed since the last call into
# the raw file (and stdout), tagged with the process and the window's round and phase. A last line
# still being written (no newline yet) waits for the next call.
prio_collect() {
  local i n log new
  for i in "${!sc_names[@]}"; do
    log=$work/$sc.${sc_names[$i]}.log
    [[ -f $log ]] || continue
    if [[ -n $(tail -c1 "$log") ]]; then
      new=$(sed '$d' "$log" | grep '^RESULT ')
    else
      new=$(grep '^RESULT ' "$log")
    fi
    n=${prio_ncol[$i]:-0}
    new=$(tail -n +$((n + 1)) <<<"$new")
    [[ -n $new ]] || continue
    prio_ncol[i]=$((n + $(wc -l <<<"$new")))
    awk -v pre="scenario=$sc ${sc_tags[$i]}" '{
      t = ""
      if (match($0, / tag=[0-9]+\.[A-Za-z0-9_]+/)) {
        split(substr($0, RSTART + 5, RLENGTH - 5), p, ".")
        t = " round=" p[1] " phase=" p[2]
      }
      sub(/^RESULT /, "")
      print "RESULT " pre t " " $0
    }' <<<"$new" | tee -a "$raw"
  done
}
# prio_nap_until EPOCH: sleep until then, or until every priority process has exited.
prio_nap_until() {
  local i d
  while :; do
    d=$(awk -v t="$1" -v now="$(date +%s.%N)" 'BEGIN { d = t - now; printf "%.3f", (d > 1 ? 1 : d) }')
    awk -v d="$d" 'BEGIN { exit !(d > 0) }' || return 0
    for i in "${sc_pids[@]}"; do
      kill -0 "$i" 2>/dev/null && break
    done || return 0
    sleep "$d"
  done
}
# prio_summary ROUND ORDER: one line per phase of that round (ORDER: comma-separated, as run) from
# the raw file: p99 or it/s per process.
prio_summary() {
  awk -v r="$1" -v ord="$2" '/^RESULT scenario=priority / && $0 ~ (" round=" r " phase=") {
    ph = ""; nm = ""; v = ""
    for (i = 2; i <= NF; i++) {
      split($i, kv, "=")
      if (kv[1] == "phase") ph = kv[2]
      else if (kv[1] == "name") nm = kv[2]
      else if (kv[1] == "p99_ms") v = "p99 " kv[2] " ms"
      else if (kv[1] == "it_per_s") v = kv[2] " it/s"
      else if (kv[1] == "skipped") v = "skipped"
    }
    line[ph] = line[ph] (line[ph] == "" ? "" : ", ") nm " " v
  } END {
    n = split(ord, o, ",")
    for (i = 1; i <= n; i++) printf "    %-12s %s\n", o[i], (o[i] in line ? line[o[i]] : "(no result yet)")
  }' "$raw"
}
if selected priority; then
  prio_rounds=${COMPUTE_PRIO_ROUNDS:-3}
  prio_settle=${COMPUTE_PRIO_SETTLE_S:-0.5}
  [[ $prio_rounds =~ ^[1-9][0-9]*$ ]] || { echo "COMPUTE_PRIO_ROUNDS='$prio_rounds' is not a positive integer" >&2; exit 2; }
  awk -v p="$phase" -v s="$prio_settle" 'BEGIN { exit !(p + 0 == p && s + 0 == s && s >= 0 && p > s) }' || {
    echo "COMPUTE_PHASE_S='$phase' must be a number of seconds above COMPUTE_PRIO_SETTLE_S='$prio_settle'" >&2
    exit 2
  }
  phase_ms=$(awk -v p="$phase" 'BEGIN { printf "%d", p * 1000 + 0.5 }')
  # Variants: the well-formed ones, in order; K = the position in COMPUTE_PRIO_VARIANTS.
  read -r -a variant_list <<<"$variants"
  v_k=() v_val=()
  k=0
  for v in "${variant_list[@]}"; do
    k=$((k + 1))
    if [[ ! $v =~ ^[A-Za-z0-9_.,=]+$ ]]; then
      say "priority variant $k '$v': SKIPPED, not of the form key=value[,key=value...]"
      echo "RESULT scenario=priority sweep=$k tunables=invalid skipped=bad_variant" >>"$raw"
      continue
    fi
    v_k+=("$k") v_val+=("$v")
  done
  # The plan: start-up (4 + 2 per variant processes side by side; ~12 s was measured for two) and
  # the exits and aggregation after the last window are estimates; the rounds are exact.
  prio_startup=$((20 + 2 * ${#v_k[@]}))
  prio_reserve=5
  used=$(($(date +%s) - t_start))
  left=$((budget - used))
  # need_s V R: seconds for R rounds with V variant phases each.
  need_s() { echo $(((prio_startup + prio_reserve) + ($2 * (5 + $1) * phase_ms + 999) / 1000)); }
  nv=${#v_k[@]}
  while ((nv > 0)) && (($(need_s "$nv" "$prio_rounds") > left)); do nv=$((nv - 1)); done
  for ((i = nv; i < ${#v_k[@]}; i++)); do
    say "priority variant ${v_k[$i]} (${v_val[$i]}): SKIPPED, the budget cannot fit $prio_rounds rounds with it"
    echo "RESULT scenario=priority sweep=${v_k[$i]} tunables=${v_val[$i]} skipped=time_budget" >>"$raw"
  done
  r_fit=$prio_rounds
  while ((r_fit > 1)) && (($(need_s "$nv" "$r_fit") > left)); do r_fit=$((r_fit - 1)); done
  phases=(alone shim_both train_alone plain shim_idle)
  for ((i = 0; i < nv; i++)); do phases+=("sweep${v_k[$i]}"); done
  n_ph=${#phases[@]}
  round_ms=$((n_ph * phase_ms))
  total_s=$(((prio_rounds * round_ms + 999) / 1000))
fi
if selected priority && begin priority "$(need_s "$nv" "$r_fit")"; then
  ((r_fit == prio_rounds)) || say "priority: the budget fits ~$r_fit of $prio_rounds rounds (decided at the start instant)"
  # Which phases each process is active in.
  declare -A active=([infer_noshim]="alone plain" [train_noshim]="plain train_alone"
    [infer_high]="shim_idle shim_both" [train_low]="shim_both")
  for ((i = 0; i < nv; i++)); do
    active[infer_high_sweep${v_k[$i]}]="sweep${v_k[$i]}"
    active[train_low_sweep${v_k[$i]}]="sweep${v_k[$i]}"
  done
  declare -A wins=()
  for ((r = 0; r < prio_rounds; r++)); do
    order=()
    for ((j = 0; j < n_ph; j++)); do order+=("${phases[$(((r + j) % n_ph))]}"); done
    for ((j = 0; j < n_ph; j++)); do
      a_ms=$(((r * n_ph + j) * phase_ms))
      w=$(awk -v a="$a_ms" -v b="$((a_ms + phase_ms))" 'BEGIN { printf "%.3f:%.3f", a / 1000, b / 1000 }')
      for p in "${!active[@]}"; do
        [[ " ${active[$p]} " == *" ${order[$j]} "* ]] || continue
        wins[$p]+="${wins[$p]:+,}$w:$((r + 1)).${order[$j]}"
      done
    done
    order_csv=$(IFS=,; echo "${order[*]}")
    span_s=$(awk -v a="$((r * round_ms))" -v b="$(((r + 1) * round_ms))" 'BEGIN { printf "from_s=%.3f to_s=%.3f", a / 1000, b / 1000 }')
    echo "RESULT scenario=priority round=$((r + 1)) order=$order_csv $span_s" >>"$raw"
  done
  echo "RESULT scenario=priority plan=1 rounds=$prio_rounds phase_s=$phase settle_s=$prio_settle rate=$rate" \
    "phases=$(IFS=,; echo "${phases[*]}") variants=$nv pin=${COMPUTE_PRIO_PIN:-0}" >>"$raw"
  ptmo=$((total_s + 150))
  prio_args=(--settle "$prio_settle")
  mkdir -p "$lat_dir"
  # COMPUTE_PRIO_PIN=1: every priority process on CPUs of its own (taskset), the reference and the
  # shim processes alike, so that the CPU-bound batch-1 inference never shares a core with another
  # process. Off by default (not yet tried on the GPU machine).
  pin_n=0 pin=()
  next_pin() {
    pin=()
    [[ ${COMPUTE_PRIO_PIN:-0} == 1 ]] && command -v taskset >/dev/null || return 0
    local per=$(($(nproc) / (4 + 2 * nv))) first
    ((per >= 1)) || return 0
    first=$((pin_n * per))
    pin_n=$((pin_n + 1))
    pin=(taskset -c "$first-$((first + per - 1))")
  }
  next_pin
  proc "name=infer_noshim shim=0" "${pin[@]}" "${rn[@]}" infer --rate "$rate" "${prio_args[@]}" --windows "${wins[infer_noshim]}" \
    --latency-out "$lat_dir/infer_noshim.txt"
  next_pin
  proc "name=train_noshim shim=0" "${pin[@]}" "${rn[@]}" train "${prio_args[@]}" --windows "${wins[train_noshim]}"
  shim_prefix --priority high
  next_pin
  proc "name=infer_high shim=1 priority=high" "${pin[@]}" "${SP[@]}" "${rn[@]}" infer --rate "$rate" "${prio_args[@]}" \
    --windows "${wins[infer_high]}" --latency-out "$lat_dir/infer_high.txt"
  shim_prefix --priority low
  next_pin
  proc "name=train_low shim=1 priority=low" "${pin[@]}" "${SP[@]}" "${rn[@]}" train "${prio_args[@]}" --windows "${wins[train_low]}"
  for ((i = 0; i < nv; i++)); do
    k=${v_k[$i]} v=${v_val[$i]}
    echo "RESULT scenario=priority sweep=$k tunables=$v" >>"$raw"
    say "priority variant $k: XPU_SCHED_TUNABLES=$v (phase sweep$k, once per round)"
    shim_prefix --priority high
    next_pin
    proc "name=infer_high_sweep$k shim=1 priority=high sweep=$k tunables=$v" "${pin[@]}" env XPU_SCHED_TUNABLES="$v" \
      "${SP[@]}" "${rn[@]}" infer --rate "$rate" "${prio_args[@]}" --windows "${wins[infer_high_sweep$k]}" \
      --latency-out "$lat_dir/infer_high_sweep$k.txt"
    shim_prefix --priority low
    next_pin
    proc "name=train_low_sweep$k shim=1 priority=low sweep=$k tunables=$v" "${pin[@]}" env XPU_SCHED_TUNABLES="$v" \
      "${SP[@]}" "${rn[@]}" train "${prio_args[@]}" --windows "${wins[train_low_sweep$k]}"
  done
  prio_live=1
  wait_ready 120
  # How many rounds fit, now that the start-up is over: the cut-off goes into the go file.
  used=$(($(date +%s) - t_start))
  fit=$(awk -v left="$((budget - used - prio_reserve))" -v r="$round_ms" -v n="$prio_rounds" \
    'BEGIN { f = int((left - 1) * 1000 / r); if (f > n) f = n; if (f < 0) f = 0; print f }')
  startup=$(awk -v a="$sc_t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  publish "$(awk -v f="$fit" -v r="$round_ms" 'BEGIN { printf "%.3f", f * r / 1000 }')"
  go_s=$(cut -d' ' -f1 "$work/$sc.go")
  echo "RESULT scenario=priority startup_s=$startup rounds_run=$fit" >>"$raw"
  say "priority: processes ready after $startup s; $fit of $prio_rounds rounds of ${n_ph} x $phase s fit the budget"
  for ((r = fit + 1; r <= prio_rounds; r++)); do
    say "priority round $r/$prio_rounds: SKIPPED, it would end after COMPUTE_BUDGET_S=$budget"
    echo "RESULT scenario=priority round=$r skipped=time_budget" >>"$raw"
  done
  t_prev=$(date +%s.%N)
  for ((r = 1; r <= fit; r++)); do
    # The round's RESULT lines come right after its last window (plus a step that overran it; a
    # line later than 1 s is copied with the next round's). The processes keep their own timeline.
    prio_nap_until "$(awk -v s="$go_s" -v r="$r" -v l="$round_ms" 'BEGIN { printf "%.3f", s + r * l / 1000 + 1 }')"
    prio_collect
    t_now=$(date +%s.%N)
    took=$(awk -v a="$t_prev" -v b="$t_now" 'BEGIN { printf "%.1f", b - a }')
    t_prev=$t_now
    echo "RESULT scenario=priority round=$r round_elapsed_s=$took" >>"$raw"
    ord=$(grep -m1 "^RESULT scenario=priority round=$r order=" "$raw" | grep -o 'order=[^ ]*' | cut -d= -f2)
    say "priority round $r/$prio_rounds ($ord): elapsed $took s (since the previous report)"
    prio_summary "$r" "$ord"
  done
  prio_rc=()
  for i in "${!sc_pids[@]}"; do
    wait "${sc_pids[$i]}"
    prio_rc[i]=$?
  done
  prio_collect
  for i in "${!sc_pids[@]}"; do
    rc=${prio_rc[$i]}
    log=$work/$sc.${sc_names[$i]}.log
    echo "--- [$sc ${sc_names[$i]}] ${sc_tags[$i]} exit $rc ($(grep -c '^RESULT ' "$log") RESULT lines, shown above)"
    grep -v '^RESULT ' "$log"
    if ! grep -q '^RESULT ' "$log"; then
      if grep -q '^SKIP' "$log"; then
        echo "RESULT scenario=$sc ${sc_tags[$i]} rc=$rc skipped=$(grep -m1 '^SKIP' "$log" | tr ' =' '_:')" >>"$raw"
      else
        echo "RESULT scenario=$sc ${sc_tags[$i]} rc=$rc error=no_result" >>"$raw"
      fi
    fi
    echo "RESULT scenario=$sc ${sc_tags[$i]} exit_rc=$rc" >>"$raw"
  done
  prio_live=0
  took=$(awk -v a="$sc_t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  echo "RESULT scenario=$sc elapsed_s=$took" >>"$raw"
  say "scenario $sc done in $took s"
fi

say "all scenarios done; aggregating"
aggregate
rc=$?
say "done (exit $rc)"
exit "$rc"
