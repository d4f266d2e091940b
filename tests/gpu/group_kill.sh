#!/usr/bin/env bash
# Group case: two processes under one `xpu-run --group NAME --mem Q` share one quota. B (probe) starts
# first; A (hold) then takes all it can; B's 512 MiB request is denied; A is killed with SIGKILL (no
# chance to clean up) and B must get its 512 MiB within 1 s. See group_member.cu for each side.
#
#   bash tests/gpu/group_kill.sh [QUOTA=3GiB]
#
# Prints the CHECK and INFO pid= lines of both processes (the observer sums their usage) plus its own;
# exits 0 when every check passed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/lib.sh"
xpu_locate

quota=${1:-3GiB}
quota_bytes=$(xpu_bytes "$quota")
bin=$(xpu_program tests/gpu group_member)
failed=0
check() {  # check NAME STATUS EXPECTED MEASURED [NOTE]
  echo "CHECK $1 status=$2 expected=$3 measured=$4${5:+ note=$5}"
  [[ $2 != FAIL ]] || failed=1
}
wait_file() {  # wait_file PATH SECONDS PID: until PATH exists; gives up early when PID has exited
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    [[ -e $1 ]] && return 0
    kill -0 "$3" 2>/dev/null || { [[ -e $1 ]]; return; }
    sleep 0.05
  done
  return 1
}
if [[ -z $XPUGPU_RUN || -z $bin ]]; then
  check setup FAIL xpu-run+group_member "xpu-run='$XPUGPU_RUN',group_member='$bin'"
  exit 1
fi

dir=$(mktemp -d /tmp/xpugpu-group.XXXXXX)
group=xpugpu-$$-$RANDOM
echo "INFO group=$group quota=$quota dir=$dir"
"$XPUGPU_RUN" --mem "$quota" --group "$group" -- "$bin" probe --dir "$dir" --probe 512MiB \
  --limit-ms 1000 --deadline-ms 5000 >"$dir/b.log" 2>&1 &
b_wrap=$!
a_wrap=
a_pid=
if ! wait_file "$dir/b_ready" 60 "$b_wrap"; then
  check b_ready FAIL ready timeout
else
  "$XPUGPU_RUN" --mem "$quota" --group "$group" -- "$bin" hold --dir "$dir" >"$dir/a.log" 2>&1 &
  a_wrap=$!
  if ! wait_file "$dir/a_ready" 60 "$a_wrap"; then
    check a_ready FAIL ready timeout
  else
    a_pid=$(cat "$dir/a_pid")
    held=$(cat "$dir/a_held")
    # "A holds most of it": at least a quarter, after both contexts' footprint (~0.5 GiB each).
    if ((held >= quota_bytes / 4)); then st=PASS; else st=FAIL; fi
    check a_holds_most_of_quota "$st" ">=$((quota_bytes / 4))" "$held"
    touch "$dir/go"
    wait_file "$dir/b_tried" 30 "$b_wrap" || check b_tried FAIL tried timeout
    sleep 0.4  # the peak (A full, B alive) stays long enough for nvidia-smi to sample it
    kill -9 "$a_pid"
    touch "$dir/killed"
    echo "INFO killed A pid=$a_pid with SIGKILL"
  fi
fi
touch "$dir/go" "$dir/killed"  # never leave B waiting, whatever went wrong above

# B finishes by itself within its 5 s deadline; bound the wait anyway.
for ((i = 0; i < 200; i++)); do
  kill -0 "$b_wrap" 2>/dev/null || break
  sleep 0.05
done
for p in "$b_wrap" $a_wrap $a_pid; do
  kill -9 "$p" 2>/dev/null
done
wait "$b_wrap"
b_rc=$?
[[ -z $a_wrap ]] || wait "$a_wrap" 2>/dev/null

echo "--- A (hold) output:"
[[ -f $dir/a.log ]] && cat "$dir/a.log"
echo "--- B (probe) output:"
cat "$dir/b.log"
grep -q '^CHECK .* status=FAIL' "$dir/a.log" "$dir/b.log" 2>/dev/null && failed=1
grep -q '^CHECK b_recovered_within_limit ' "$dir/b.log" || check b_completed FAIL completed "rc=$b_rc"
rm -rf "$dir"
exit "$failed"
