#!/usr/bin/env bash
# Container entrypoint form: no wrapper, just the library and the environment.
export LD_PRELOAD=/opt/xpushim/lib/libxpushim.so${LD_PRELOAD:+:$LD_PRELOAD}
export XPU_MEM_LIMIT=${XPU_MEM_LIMIT:-10GiB}
export XPU_LOG_LEVEL=info   # prints the effective settings at start-up
exec "$@"
