#!/usr/bin/env bash
# xpushim real-GPU acceptance suite and benchmarks (tests/gpu/README.md).
#
#   OUT=/tmp/out bash tests/gpu/run_all.sh
#
# Builds the project (Release, GPU tests and benchmarks on), runs ctest (the CPU tiers) briefly, then
# every acceptance case and benchmark, each under `timeout`, and writes
#   $OUT/summary.md    card, driver, CUDA, date; one row per case and per check; benchmark table
#   $OUT/results.json  the same, machine-readable
#   $OUT/log.txt       everything printed
#   $OUT/priority_latency.tgz  every priority request's latency (bench/run_compute.sh)
# Exit status: 0 when no case failed.
#
# Knobs (environment; none starts with XPU_, which is the shim's own configuration prefix):
#   XPUGPU_BUILD_DIR, XPUGPU_SHIM, XPUGPU_RUN   where things are (see lib.sh)
#   XPUGPU_SKIP_BUILD=1        reuse an existing build
#   XPUGPU_ONLY="a b"          run only these case ids (build and ctest are ids too)
#   XPUGPU_BUDGET_S=430        no case starts after this many seconds
#   XPUGPU_HARD_S=470          every case is cut so that it ends before this
#   XPUGPU_CASE_TIMEOUT_S=120  per-case timeout
#   XPUGPU_CTEST_S=60          cap on the whole ctest stage
#   XPUGPU_COMPUTE=0           skip bench/run_compute.sh (compute time-slice benchmarks; on by default)
#   XPUGPU_BASELINE=1          no shim anywhere: every program runs bare with --quota none (quota
#                              checks become INFO, the observer reports the real footprint) and the
#                              benchmarks run A/A (both sides bare: the noise floor of each ratio)
#   XPUGPU_GPU_INDEX=0         the card nvidia-smi observes (the programs use CUDA device 0)
#
# No `set -e` on purpose: one failing case must never stop the suite; each status is checked.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$HERE/lib.sh"
xpu_locate
REPO=$XPUGPU_REPO
BUILD=$XPUGPU_BUILD_DIR
OUT=${OUT:-$BUILD/gpu-out}
BUDGET_S=${XPUGPU_BUDGET_S:-430}
HARD_S=${XPUGPU_HARD_S:-470}
CASE_TIMEOUT=${XPUGPU_CASE_TIMEOUT_S:-120}
CTEST_S=${XPUGPU_CTEST_S:-60}
IDX=${XPUGPU_GPU_INDEX:-0}
BASELINE=${XPUGPU_BASELINE:-0}
CARD_MIB=1048576  # the card's memory, read in collect_meta; the baseline observer's yardstick
PY=${PYTHON:-python3}
JOBS=$(nproc 2>/dev/null || echo 8)
((JOBS > 16)) && JOBS=16
T0=$(date +%s)

mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/xpugpu.XXXXXX)
CHECKS=$WORK/checks.txt
META=$WORK/meta.txt
: >"$CHECKS"
: >"$META"
OBS_PIDS=""

# Whatever the caller had preloaded or configured must not leak into baselines or observers.
unset LD_PRELOAD CUDA_DEVICE_MEMORY_LIMIT
for v in $(compgen -e | grep '^XPU_'); do unset "$v"; done
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export PATH=/usr/local/cuda/bin:$PATH  # CMake's CUDA detection looks on PATH
fi
SMI=(env -u LD_PRELOAD nvidia-smi)

elapsed() { echo $(($(date +%s) - T0)); }
selected() { [[ -z ${XPUGPU_ONLY:-} || " $XPUGPU_ONLY " == *" $1 "* ]]; }
add_check() {  # add_check CASE NAME STATUS EXPECTED MEASURED [NOTE]
  echo "CHECK $1 $2 status=$3 expected=${4// /_} measured=${5// /_}${6:+ note=$6}" >>"$CHECKS"
}
note_case() {  # note_case CASE RC SECONDS DESCRIPTION
  echo "CASE $1 rc=$2 seconds=$3 note=$4" >>"$CHECKS"
}
meta() { echo "$1=$2" >>"$META"; }

collect_meta() {
  local q
  q=$("${SMI[@]}" --query-gpu=name,driver_version,memory.total,pci.bus_id --format=csv,noheader -i "$IDX" 2>/dev/null | head -n1)
  meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  meta card "$(cut -d, -f1 <<<"$q" | xargs)"
  meta driver "$(cut -d, -f2 <<<"$q" | xargs)"
  meta memory_total "$(cut -d, -f3 <<<"$q" | xargs)"
  meta pci_bus "$(cut -d, -f4 <<<"$q" | xargs)"
  local mib
  mib=$(cut -d, -f3 <<<"$q" | tr -dc 0-9)
  [[ -z $mib ]] || CARD_MIB=$mib
  [[ $BASELINE != 1 ]] || meta mode "BASELINE: no shim, quota checks INFO, benchmarks A/A"
  meta cuda_driver "$("${SMI[@]}" 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | head -n1 | awk '{print $3}')"
  meta nvcc "$(nvcc --version 2>/dev/null | grep -o 'V[0-9][0-9.]*' | head -n1)"
  meta host "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"), kernel $(uname -r), $(nproc) cpus"
  meta observer "nvidia-smi -lms 100 without LD_PRELOAD; per-pid used_memory, else card memory.used minus baseline"
  # The commit, read from .git directly (the device copy may have no git).
  local head ref
  if head=$(cat "$REPO/.git/HEAD" 2>/dev/null); then
    if [[ $head == ref:* ]]; then
      ref=${head#ref: }
      head=$(cat "$REPO/.git/$ref" 2>/dev/null || grep -m1 " $ref\$" "$REPO/.git/packed-refs" 2>/dev/null | cut -d' ' -f1)
      [[ -n $head ]] || head="unknown ($ref)"
    fi
    meta commit "$head"
  fi
  # The device copy's .git can be stale (only the working tree is refreshed): a digest of the
  # sources names the tree that ran. `bash tests/gpu/source_digest.sh` prints the same locally.
  meta source_digest "$(bash "$REPO/tests/gpu/source_digest.sh" "$REPO")"
  echo "--- nvidia-smi at start:"
  "${SMI[@]}" 2>&1 | head -n 30
  cat "$META"
}

observer_start() {  # observer_start CASE: sample per-process and whole-card usage every 100 ms
  OBS_DIR=$WORK/obs-$1
  mkdir -p "$OBS_DIR"
  OBS_BASE=$("${SMI[@]}" --query-gpu=memory.used --format=csv,noheader,nounits -i "$IDX" 2>/dev/null | head -n1 | tr -dc 0-9)
  "${SMI[@]}" --query-compute-apps=pid,used_memory --format=csv,noheader,nounits -i "$IDX" -lms 100 \
    >"$OBS_DIR/apps.csv" 2>&1 </dev/null &
  OBS_PIDS=$!
  "${SMI[@]}" --query-gpu=memory.used --format=csv,noheader,nounits -i "$IDX" -lms 100 \
    >"$OBS_DIR/gpu.csv" 2>&1 </dev/null &
  OBS_PIDS="$OBS_PIDS $!"
  sleep 0.5  # nvidia-smi needs a moment before its first sample
}

observer_stop() {
  sleep 0.3
  local p
  for p in $OBS_PIDS; do kill "$p" 2>/dev/null; done
  for p in $OBS_PIDS; do wait "$p" 2>/dev/null; done
  OBS_PIDS=""
}

# run_case ID DESCRIPTION [quota=SIZE] [rc=N] [timeout=S] -- COMMAND...
#   quota=SIZE  judge nvidia-smi's view of the case against SIZE (no observer without it)
#   rc=N        the exit status that means success (default 0; 77 always means SKIP)
run_case() {
  local id=$1 desc=$2 quota="" expect_rc=0 tmo=$CASE_TIMEOUT
  shift 2
  while [[ $# -gt 0 && $1 != -- ]]; do
    case $1 in
      quota=*) quota=${1#quota=} ;;
      rc=*) expect_rc=${1#rc=} ;;
      timeout=*) tmo=${1#timeout=} ;;
    esac
    shift
  done
  shift
  selected "$id" || return 0
  local now left
  now=$(date +%s)
  if ((now - T0 >= BUDGET_S)); then
    add_check "$id" time_budget SKIP "start<${BUDGET_S}s" "$((now - T0))s" "suite time budget used up"
    note_case "$id" -1 0 "$desc"
    echo "=== [$(elapsed)s] case $id: SKIPPED, time budget used up"
    return 0
  fi
  left=$((T0 + HARD_S - now - 10))
  ((left < tmo)) && tmo=$left
  ((tmo < 10)) && tmo=10

  local log=$WORK/$id.log rc t1 secs
  echo
  echo "=== [$(elapsed)s] case $id: $desc (timeout ${tmo}s)"
  echo "+ $*"
  [[ -z $quota ]] || observer_start "$id"
  t1=$(date +%s.%N)
  # timeout signals its whole process group, so children of xpu-run die with it.
  timeout -k 5 "$tmo" "$@" >"$log" 2>&1 </dev/null
  rc=$?
  secs=$(awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  [[ -z $quota ]] || observer_stop
  cat "$log"
  sed -n "s/^CHECK /CHECK $id /p" "$log" >>"$CHECKS"

  if ((rc == expect_rc)); then
    add_check "$id" exit_status PASS "$expect_rc" "$rc"
  elif ((rc == 77)); then
    add_check "$id" exit_status SKIP "$expect_rc" "$rc" "framework or tool missing"
  elif ((rc == 124 || rc == 137)); then
    add_check "$id" exit_status FAIL "$expect_rc" "$rc" "timed out after ${tmo}s"
  else
    add_check "$id" exit_status FAIL "$expect_rc" "$rc"
  fi
  if [[ -n $quota && $rc -ne 77 ]]; then
    local seen
    seen=$("$PY" "$HERE/observer.py" --apps "$OBS_DIR/apps.csv" --gpu "$OBS_DIR/gpu.csv" \
      --baseline-mib "${OBS_BASE:-0}" --quota "$(xpu_bytes "$quota")" --log "$log")
    echo "$seen"
    sed -n "s/^CHECK /CHECK $id /p" <<<"$seen" >>"$CHECKS"
  fi
  note_case "$id" "$rc" "$secs" "$desc"
  echo "--- [$(elapsed)s] case $id: exit $rc after ${secs}s"
}

# missing ID DESCRIPTION WHAT...: record a case that cannot run because a build product is missing.
missing() {
  local id=$1 desc=$2
  shift 2
  selected "$id" || return 0
  add_check "$id" prerequisites FAIL "$*" missing "not built or not found under $BUILD"
  note_case "$id" -1 0 "$desc"
  echo "=== case $id: FAIL, missing $*"
}

# grep_check ID NAME PATTERN: the case's output must contain PATTERN (the bad-config message).
grep_check() {
  selected "$1" || return 0
  [[ -f $WORK/$1.log ]] || return 0
  if grep -q -- "$3" "$WORK/$1.log"; then
    add_check "$1" "$2" PASS "output_contains_$3" "$(grep -m1 -- "$3" "$WORK/$1.log" | cut -c1-60 | tr ' ' _)"
  else
    add_check "$1" "$2" FAIL "output_contains_$3" "absent"
  fi
}

stage_build() {
  selected build || return 0
  if [[ ${XPUGPU_SKIP_BUILD:-0} == 1 ]]; then
    meta build "skipped (XPUGPU_SKIP_BUILD=1), using $BUILD"
    return 0
  fi
  local t1 rc keep
  t1=$(date +%s)
  echo "=== [$(elapsed)s] build: cmake Release, GPU tests + bench, -j$JOBS"
  timeout 240 cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DXPU_BUILD_GPU_TESTS=ON \
    -DXPU_BUILD_BENCH=ON </dev/null
  rc=$?
  if ((rc == 0)); then
    # Keep going past a failing target: whatever did build can still be tested.
    keep=(-k)
    grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja' "$BUILD/CMakeCache.txt" 2>/dev/null && keep=(-k 0)
    timeout 360 cmake --build "$BUILD" -j"$JOBS" -- "${keep[@]}" </dev/null
    rc=$?
  fi
  if ((rc == 0)); then
    add_check build cmake_build PASS 0 0
  else
    add_check build cmake_build FAIL 0 "$rc" "configure or build failed; cases run with what exists"
  fi
  note_case build "$rc" "$(($(date +%s) - t1))" "cmake configure + build (Release, XPU_BUILD_GPU_TESTS, XPU_BUILD_BENCH)"
}

stage_ctest() {
  selected ctest || return 0
  local t1 rc summary
  t1=$(date +%s)
  echo "=== [$(elapsed)s] ctest (CPU tiers), at most ${CTEST_S}s"
  timeout -k 5 "$CTEST_S" ctest --test-dir "$BUILD" --output-on-failure -j"$JOBS" --timeout 60 \
    >"$WORK/ctest.log" 2>&1 </dev/null
  rc=$?
  tail -n 60 "$WORK/ctest.log"
  summary=$(grep -Eo '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$WORK/ctest.log" | tail -n1)
  if grep -q 'No tests were found' "$WORK/ctest.log"; then
    add_check ctest ctest SKIP "all_pass" "no_tests"
  elif ((rc == 0)); then
    add_check ctest ctest PASS all_pass "${summary:-rc=0}"
  else
    add_check ctest ctest FAIL all_pass "${summary:-rc=$rc}" "$( ((rc == 124)) && echo "cut at ${CTEST_S}s")"
  fi
  note_case ctest "$rc" "$(($(date +%s) - t1))" "ctest on the build tree (unit, shim, fakes, preload tiers)"
}

# quota_case ID DESCRIPTION QUOTA FORM [ENV=VALUE ...] -- PROGRAM ARGS...
# Runs PROGRAM ARGS --quota QUOTA under the shim, started in one of the product's forms:
#   xpurun      xpu-run --log-level info --mem QUOTA --      xpurun-dev  the same with --mem 0=QUOTA
#   container   LD_PRELOAD=shim XPU_MEM_LIMIT=QUOTA
#   hami        LD_PRELOAD=shim CUDA_DEVICE_MEMORY_LIMIT=<QUOTA in MiB>m
# ENV=VALUE pairs (or -u NAME) go to `env` in front of the program. The nvidia-smi observer judges the
# case against QUOTA. In baseline mode (XPUGPU_BASELINE=1) the program runs without the shim with
# --quota none, and the observer only reports the real footprint (judged against the whole card).
quota_case() {
  local id=$1 desc=$2 quota=$3 form=$4 envs=() prefix=()
  shift 4
  while [[ $# -gt 0 && $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  local prog=$1
  if [[ -z $prog ]]; then
    missing "$id" "$desc" "test program"
    return 0
  fi
  if [[ $BASELINE == 1 ]]; then
    run_case "$id" "BASELINE, no shim: $desc" "quota=${CARD_MIB}MiB" -- env "${envs[@]}" "$@" --quota none
    return 0
  fi
  case $form in
    xpurun | xpurun-dev)
      [[ -n $XPUGPU_RUN ]] || { missing "$id" "$desc" xpu-run; return 0; }
      # info: the shim prints its effective settings once, so the log shows what each case ran with.
      prefix=("$XPUGPU_RUN" --log-level info --mem "$([[ $form == xpurun-dev ]] && echo 0=)$quota" --) ;;
    container)
      [[ -n $XPUGPU_SHIM ]] || { missing "$id" "$desc" libxpushim.so; return 0; }
      prefix=(env LD_PRELOAD="$XPUGPU_SHIM" XPU_MEM_LIMIT="$quota") ;;
    hami)
      [[ -n $XPUGPU_SHIM ]] || { missing "$id" "$desc" libxpushim.so; return 0; }
      prefix=(env LD_PRELOAD="$XPUGPU_SHIM" CUDA_DEVICE_MEMORY_LIMIT="$(($(xpu_bytes "$quota") >> 20))m") ;;
  esac
  run_case "$id" "$desc" "quota=$quota" -- "${prefix[@]}" env "${envs[@]}" "$@" --quota "$quota"
}

stage_cases() {
  local shim=$XPUGPU_SHIM run=$XPUGPU_RUN rtq drv
  rtq=$(xpu_program tests/gpu runtime_quota)
  drv=$(xpu_program tests/gpu driver_paths)
  echo "=== shim: ${shim:-MISSING}"
  echo "=== xpu-run: ${run:-MISSING}"
  echo "=== runtime_quota: ${rtq:-MISSING}  driver_paths: ${drv:-MISSING}"
  meta shim "${shim:-missing}"
  meta xpu_run "${run:-missing}"

  # Sanity: the card and the programs work without the shim at all.
  if [[ -n $rtq ]]; then
    run_case baseline_runtime "no shim: runtime_quota --quota none --quick (the GPU works)" \
      -- "$rtq" --quota none --quick
  else
    missing baseline_runtime "no shim sanity run" runtime_quota
  fi

  # Bad configuration: init must fail loudly, naming the variable; xpu-run must refuse with status 2.
  if [[ $BASELINE != 1 ]]; then
    if [[ -n $shim && -n $drv ]]; then
      run_case badconfig_env_driver "XPU_MEM_LIMIT=banana under LD_PRELOAD: cuInit fails, message names XPU_MEM_LIMIT" \
        -- env LD_PRELOAD="$shim" XPU_MEM_LIMIT=banana "$drv" --expect-init-failure
      grep_check badconfig_env_driver message_names_variable XPU_MEM_LIMIT
    else
      missing badconfig_env_driver "bad XPU_MEM_LIMIT, driver API" libxpushim.so driver_paths
    fi
    if [[ -n $shim && -n $rtq ]]; then
      run_case badconfig_env_runtime "XPU_MEM_LIMIT=banana under LD_PRELOAD: cudart init fails, message names XPU_MEM_LIMIT" \
        -- env LD_PRELOAD="$shim" XPU_MEM_LIMIT=banana "$rtq" --expect-init-failure
      grep_check badconfig_env_runtime message_names_variable XPU_MEM_LIMIT
    else
      missing badconfig_env_runtime "bad XPU_MEM_LIMIT, runtime API" libxpushim.so runtime_quota
    fi
    if [[ -n $run ]]; then
      run_case badconfig_xpurun "xpu-run --mem banana -- true exits 2" rc=2 -- "$run" --mem banana -- true
    else
      missing badconfig_xpurun "xpu-run --mem banana" xpu-run
    fi
  fi

  # CUDA C++ programs, 2 GiB, in each of the product's forms.
  quota_case runtime_quota "CUDA runtime program (static cudart), xpu-run --mem 2GiB" 2GiB xpurun -- "$rtq"
  quota_case driver_paths "driver API via -lcuda, dlsym, cuGetProcAddress (x3), VMM; xpu-run --mem 0=2GiB" \
    2GiB xpurun-dev -- "$drv"
  if [[ $BASELINE != 1 ]]; then
    quota_case env_container "container form: LD_PRELOAD + XPU_MEM_LIMIT=2GiB" 2GiB container -- "$rtq" --quick
    quota_case env_hami "HAMi form: LD_PRELOAD + CUDA_DEVICE_MEMORY_LIMIT=2048m" 2GiB hami -- "$rtq" --quick
    run_case group_kill "two processes, one --group, 3 GiB: B denied while A holds; kill -9 A; B allocates within 1 s" \
      quota=3GiB -- bash "$HERE/group_kill.sh" 3GiB
  fi

  # Frameworks, 4 GiB. Each script reports SKIP (exit 77) when its framework is missing.
  quota_case torch_default "PyTorch, default caching allocator, xpu-run --mem 4GiB" 4GiB xpurun \
    -u PYTORCH_CUDA_ALLOC_CONF -u PYTORCH_ALLOC_CONF -- "$PY" "$HERE/torch_quota.py"
  quota_case torch_expandable "PyTorch, expandable_segments:True, xpu-run --mem 4GiB" 4GiB xpurun \
    -u PYTORCH_ALLOC_CONF PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True -- "$PY" "$HERE/torch_quota.py"
  quota_case cupy "CuPy, xpu-run --mem 4GiB" 4GiB xpurun -- "$PY" "$HERE/cupy_quota.py"
  # Preallocation explicitly on (JAX's default): the 75 % pool must fit the quota.
  quota_case jax "JAX, default preallocation (75% of the reported total), xpu-run --mem 4GiB" 4GiB xpurun \
    -u XLA_PYTHON_CLIENT_MEM_FRACTION -u XLA_CLIENT_MEM_FRACTION -u XLA_PYTHON_CLIENT_ALLOCATOR \
    XLA_PYTHON_CLIENT_PREALLOCATE=true -- "$PY" "$HERE/jax_quota.py"
}

stage_bench() {
  [[ $BASELINE != 1 ]] || export BENCH_AA=1
  run_case bench_micro "host cost of cuLaunchKernel, launch via cudart, 1 MiB alloc/free, cuMemGetInfo: no shim vs shim, 5 pairs" \
    -- bash "$REPO/bench/run_bench.sh" micro
  run_case bench_train "PyTorch training step (GPU-bound conv net, batch 256): no shim vs shim, 3 pairs" \
    -- bash "$REPO/bench/run_bench.sh" train
  if [[ ${XPUGPU_COMPUTE:-1} == 1 ]]; then
    # ~2.5-3 min. Scenarios that would end after the suite's hard end are skipped (SKIP lines);
    # compute.json, compute.md and the xpu-run status snapshot go to $OUT.
    local compute_left=$((T0 + HARD_S - $(date +%s) - 20))
    ((compute_left > 290)) && compute_left=290
    run_case bench_compute "compute time-slices: 30/70, 10/20/30/40, cap 30, work conservation, priority (ResNet-50), gate cost; shim vs plain sharing" \
      timeout=300 -- env COMPUTE_OUT="$OUT" COMPUTE_BUDGET_S="$compute_left" bash "$REPO/bench/run_compute.sh"
  fi
}

SUITE_RC=1
finish() {
  observer_stop
  meta wall_seconds "$(elapsed)"
  echo
  echo "=== [$(elapsed)s] report"
  "$PY" "$HERE/report.py" --checks "$CHECKS" --meta "$META" --out "$OUT"
  SUITE_RC=$?  # 0: no case failed, 1: some failed, other: the report itself broke
  if [[ ! -s $OUT/summary.md ]]; then
    cat "$META" "$CHECKS" >"$OUT/summary.md"  # raw, but never nothing
  fi
  [[ -f $OUT/summary.md ]] && cat "$OUT/summary.md"
  # Every request's latency (one file per inference process), already pooled into compute.json:
  # one archive, so that the results are a handful of files to bring back and commit.
  if [[ -d $OUT/priority_latency ]]; then
    tar -czf "$OUT/priority_latency.tgz" -C "$OUT" priority_latency && rm -rf "$OUT/priority_latency"
  fi
  [[ -n ${XPUGPU_KEEP_WORK:-} ]] || rm -rf "$WORK"
}

main() {
  # Interrupted (Ctrl-C, or the machine's own time limit): still write what we have.
  trap 'echo "=== interrupted"; finish; exit 130' INT TERM
  echo "xpushim GPU suite: repo $REPO, build $BUILD, out $OUT, budget ${BUDGET_S}s/${HARD_S}s"
  collect_meta
  stage_build
  xpu_locate  # again: the build may just have produced the shim and xpu-run
  stage_ctest
  stage_cases
  stage_bench
  finish
  return "$SUITE_RC"
}

main 2>&1 | tee "$OUT/log.txt"
exit "${PIPESTATUS[0]}"
