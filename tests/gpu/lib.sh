# shellcheck shell=bash
# Sourced (not run) by tests/gpu/run_all.sh, tests/gpu/group_kill.sh, bench/run_bench.sh and
# bench/run_compute.sh, so that all of them find the build products the same way.
#
# xpu_locate sets and exports:
#   XPUGPU_REPO       the repository root (two levels above this file)
#   XPUGPU_BUILD_DIR  the build tree; default $XPUGPU_REPO/build
#   XPUGPU_SHIM       the shim: $XPUGPU_BUILD_DIR/libxpushim/libxpushim.so, else the first
#                     libxpushim.so under the build tree; empty if none
#   XPUGPU_RUN        the wrapper: $XPUGPU_BUILD_DIR/tools/xpu-run/xpu-run, else the first executable
#                     file named xpu-run under the build tree; empty if none
# Any of them set beforehand wins. The names avoid the XPU_ prefix on purpose: that prefix is the
# shim's own configuration contract, and a test harness variable must never be read as one.

xpu_first_file() {  # xpu_first_file PREFERRED_PATH NAME: PREFERRED_PATH if it exists, else a search
  if [[ -f $1 ]]; then
    printf '%s\n' "$1"
  elif [[ -d $XPUGPU_BUILD_DIR ]]; then
    find "$XPUGPU_BUILD_DIR" -name "$2" -type f ! -path '*/CMakeFiles/*' 2>/dev/null | sort | head -n1
  fi
}

xpu_locate() {
  local here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  : "${XPUGPU_REPO:=$(cd "$here/../.." && pwd)}"
  : "${XPUGPU_BUILD_DIR:=$XPUGPU_REPO/build}"
  [[ -n ${XPUGPU_SHIM:-} ]] || XPUGPU_SHIM=$(xpu_first_file "$XPUGPU_BUILD_DIR/libxpushim/libxpushim.so" libxpushim.so)
  [[ -n ${XPUGPU_RUN:-} ]] || XPUGPU_RUN=$(xpu_first_file "$XPUGPU_BUILD_DIR/tools/xpu-run/xpu-run" xpu-run)
  # LD_PRELOAD needs an absolute path once we change directory or exec through xpu-run.
  [[ -z $XPUGPU_SHIM ]] || XPUGPU_SHIM=$(cd "$(dirname "$XPUGPU_SHIM")" && pwd)/$(basename "$XPUGPU_SHIM")
  export XPUGPU_REPO XPUGPU_BUILD_DIR XPUGPU_SHIM XPUGPU_RUN
}

# xpu_program SUBDIR NAME: a test or bench program built from SUBDIR (tests/gpu, bench); empty if none.
xpu_program() {
  xpu_first_file "$XPUGPU_BUILD_DIR/$1/$2" "$2"
}

# xpu_bytes SIZE: "4GiB" / "512MiB" / "2048m" / bytes -> bytes (the forms the suite passes around).
xpu_bytes() {
  local s=$1 n unit
  [[ $s =~ ^([0-9]+)([A-Za-z]*)$ ]] || { echo 0; return 1; }
  n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]}
  case $unit in
    "" | B) echo "$n" ;;
    K | k | KiB) echo $((n << 10)) ;;
    M | m | MiB) echo $((n << 20)) ;;
    G | g | GiB) echo $((n << 30)) ;;
    *) echo 0; return 1 ;;
  esac
}

# xpu_shim_prefix SIZE: sets the array XPUGPU_PREFIX to the command prefix that runs a program under the
# shim with a SIZE quota: xpu-run when it was built, else the container form (LD_PRELOAD +
# XPU_MEM_LIMIT). Returns 1 when neither exists. Usage: xpu_shim_prefix 16GiB && "${XPUGPU_PREFIX[@]}" cmd
# shellcheck disable=SC2034  # XPUGPU_PREFIX is the result; the caller reads it
xpu_shim_prefix() {
  if [[ -n $XPUGPU_RUN ]]; then
    XPUGPU_PREFIX=("$XPUGPU_RUN" --mem "$1" --)
  elif [[ -n $XPUGPU_SHIM ]]; then
    XPUGPU_PREFIX=(env LD_PRELOAD="$XPUGPU_SHIM" XPU_MEM_LIMIT="$1")
  else
    XPUGPU_PREFIX=()
    return 1
  fi
}
