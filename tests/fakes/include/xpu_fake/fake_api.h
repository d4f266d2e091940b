/* Test hooks of the simulated libcuda.so.1 (tests/fakes). Test programs resolve them at run time:
 *
 *   void* h = dlopen("libcuda.so.1", RTLD_NOW);            // the fake, via LD_LIBRARY_PATH
 *   xpuFakeQuery_t q = (xpuFakeQuery_t)dlsym(h, "xpuFakeQuery");
 *   unsigned long long used = 0;
 *   if (q("used_bytes", 0, &used) == 0) { ... }
 *
 * They are not part of the CUDA ABI; the real driver has none of them, so a test that finds
 * dlsym(h, "xpuFakeQuery") == NULL is running against real hardware.
 */
#ifndef XPU_FAKE_FAKE_API_H
#define XPU_FAKE_FAKE_API_H

#ifdef __cplusplus
extern "C" {
#endif

/* Calls made in THIS process to the export of that exact name (e.g. "cuMemAlloc_v2",
 * "cuLaunchKernel_ptsz", "cuGetProcAddress_v2"), whether implemented or a NOT_SUPPORTED stub.
 * Calls through a pointer from cuGetProcAddress count under the export it resolved to.
 * 0 for names that libcuda 13.0 does not export. */
unsigned long long xpuFakeCallCount(const char* export_name);

/* Resets every counter of this process to 0. */
void xpuFakeResetCallCounts(void);

/* Reads one number of the simulated device `device` (0-based) into *out.
 *
 * what                         value
 * "used_bytes"                 device memory in use, all processes (dead ones reaped first)
 * "free_bytes"                 total_bytes - used_bytes
 * "total_bytes"                device memory size (XPU_FAKE_TOTAL_MEM)
 * "pid_used_bytes"             bytes charged to this process (contexts + allocations)
 * "pid_busy_ns"                kernel time this process ran on the device
 * "pid_kernel_count"           kernels this process ran on the device (graph kernels included)
 * "used_bytes_of_pid:<pid>"    bytes charged to <pid> (0 once the process is dead and reaped)
 * "busy_ns_of_pid:<pid>"       kernel time of <pid> (kept after it exits)
 * "kernel_count_of_pid:<pid>"  kernels of <pid> (kept after it exits)
 * "contexts_of_pid:<pid>"      live contexts of <pid> on the device
 * "device_busy_ns"             kernel time of all processes
 * "device_kernel_count"        kernels of all processes
 * "busy_until_ns"              CLOCK_MONOTONIC time at which the device's queued work ends
 * "graph_mem_reserved"         this process's graph memory reserved on the device
 * "live_pids"                  processes holding a context or memory on the device
 * "device_count"               simulated devices (XPU_FAKE_DEVICES)
 * "ctx_bytes"                  context footprint (XPU_FAKE_CTX_BYTES)
 * "ns_per_block"               kernel duration per block of gridDimX (XPU_FAKE_NS_PER_BLOCK)
 *
 * Returns 0 on success; -1 unknown `what` (or malformed pid), -2 device out of range,
 * -3 NULL argument, -4 state unavailable (XPU_FAKE_STATE cannot be mapped), -5 no record of
 * that pid (*out is then 0). Works without cuInit. */
int xpuFakeQuery(const char* what, int device, unsigned long long* out);

typedef unsigned long long (*xpuFakeCallCount_t)(const char* export_name);
typedef void (*xpuFakeResetCallCounts_t)(void);
typedef int (*xpuFakeQuery_t)(const char* what, int device, unsigned long long* out);

#ifdef __cplusplus
}
#endif

#endif /* XPU_FAKE_FAKE_API_H */
