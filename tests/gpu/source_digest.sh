#!/usr/bin/env bash
# A digest of the sources that build and test xpushim (the GPU suite records it: the device copy's
# .git may be stale). Usage: bash tests/gpu/source_digest.sh [REPO]   (prints 16 hex digits)
set -euo pipefail
cd "${1:-$(dirname "$0")/../..}"
find common memquota timeslice coordinator libxpushim tools tests bench scripts CMakeLists.txt cmake \
  -path tests/data -prune -o -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o \
  -name '*.cu' -o -name '*.def' -o -name '*.map' -o -name '*.sh' -o -name '*.py' -o \
  -name CMakeLists.txt -o -name '*.cmake' \) -print0 |
  LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
