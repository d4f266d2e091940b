#!/usr/bin/env bash
# The main job (README): build xpushim and show a program under a quota seeing the quota and
# being stopped at it, then two compute-bound processes given 30 % and 70 % of the GPU. On a
# machine with an NVIDIA driver it runs on the real GPU; otherwise it uses the bundled simulated
# driver and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=$(realpath -m "${BUILD_DIR:-build}")
if command -v apt-get >/dev/null && ! dpkg -s libboost-dev libfmt-dev catch2 cmake g++ >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq cmake g++ libboost-dev libfmt-dev catch2 >/dev/null
fi
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target xpushim xpu-run xpu_probe xpu_compute_probe xpu_fake_cuda xpu_fake_nvml >/dev/null
RUN="$BUILD/tools/xpu-run/xpu-run"
PROBE="$BUILD/tests/preload/xpu_probe"
COMPUTE_PROBE="$BUILD/tests/preload/xpu_compute_probe"
SIMULATED=0
if ldconfig -p 2>/dev/null | grep -q 'libcuda.so.1' && command -v nvidia-smi >/dev/null; then
  echo "== Real NVIDIA driver found: running on the GPU."
  export XPU_NODE_SEGMENT="xpushim-demo-$$"
else
  echo "== No NVIDIA driver on this machine: using the bundled SIMULATED driver (16 GiB device)."
  SIMULATED=1
  export LD_LIBRARY_PATH="$BUILD/fakes/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export XPU_FAKE_STATE="/dev/shm/xpushim-demo-fake-$$" XPU_FAKE_TOTAL_MEM=$((16 << 30))
  export XPU_NODE_SEGMENT="xpushim-demo-$$"
fi
trap 'rm -f /dev/shm/xpushim-demo-*$$' EXIT
echo "== Without xpushim, the program sees the whole device:"
"$PROBE" gpa info | grep -E 'total'
echo "== Under 'xpu-run --mem 2GiB', the same program sees 2 GiB and is stopped there:"
"$RUN" --mem 2GiB -- "$PROBE" gpa info | grep -E 'total'
"$RUN" --mem 2GiB -- "$PROBE" gpa fill 256 | sed -n 's/^allocated=\([0-9]*\).*error=\([0-9]*\).*/allocated \1 bytes in 256 MiB chunks, then error \2 (CUDA_ERROR_OUT_OF_MEMORY)/p'
echo "== A malformed quota never runs unlimited:"
"$RUN" --mem 10GB -- "$PROBE" gpa info || echo "(xpu-run exited with status $?)"

echo "== Compute: two busy processes with --compute 30 and --compute 70 share the GPU 30/70:"
if ((SIMULATED)); then
  # The compute probe drives the simulated device (its kernels run on one shared timeline); on a
  # real GPU the same comparison is bench/run_compute.sh (compute-bound kernels, ResNet-50).
  # Both start at once; each measures the same 2 s window after a 0.3 s warm-up.
  for pct in 30 70; do
    "$RUN" --compute "$pct" -- "$COMPUTE_PROBE" gpa busy blocks=500 warmup_ms=300 ms=2000 \
      >"/dev/shm/xpushim-demo-compute-$pct-$$" &
  done
  sleep 1.5
  echo "-- xpu-run status, while they run:"
  "$RUN" status | sed 's/^/   /'
  wait
  for pct in 30 70; do
    sed -n 's/.* win_ns=\([0-9]*\) own_ns=\([0-9]*\).*/\1 \2/p' "/dev/shm/xpushim-demo-compute-$pct-$$" |
      awk -v p="$pct" '{printf "--compute %s: got %.1f%% of the device\n", p, 100 * $2 / $1}'
  done
else
  echo "(on a real GPU this comparison is bench/run_compute.sh: see bench/README.md)"
fi
