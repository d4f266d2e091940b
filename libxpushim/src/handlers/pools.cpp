// Stream-ordered allocation. A pool keeps freed bytes reserved (up to its release threshold)
// until a synchronisation or a trim gives them back, so a pool is charged
// max(bytes handed out, bytes the pool reserves), re-read from the driver after each change.
// Work captured into a graph allocates nothing now: the graph's memory is charged when the
// driver reserves it (graphs.cpp).
#include "driver/driver_api.hpp"
#include "handlers/handlers.hpp"
#include "runtime/runtime.hpp"

namespace xpu::shim::handlers {
namespace {

std::optional<std::uint64_t> pool_reserved(CUmemoryPool pool) {
  DriverApi& d = driver_api();
  if (d.mem_pool_get_attribute == nullptr) return std::nullopt;
  RelaxedCaptureScope relaxed;
  cuuint64_t reserved = 0;
  if (d.mem_pool_get_attribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved) !=
      CUDA_SUCCESS)
    return std::nullopt;
  return reserved;
}

}  // namespace

CUresult pool_alloc(CUdeviceptr* dptr, size_t bytes, CUmemoryPool pool, bool default_pool,
                    CUstream stream, Stream variant, const std::function<CUresult()>& call) {
  Runtime& rt = Runtime::get();
  const Mode mode = rt.ensure_initialised();
  if (mode == Mode::misconfigured) return Runtime::kConfigError;
  memquota::ProcessAccount* acct = rt.account();
  if (mode != Mode::enforcing || acct == nullptr || bytes == 0 ||
      stream_capturing(stream, variant == Stream::per_thread))
    return call();
  int ordinal = 0;
  const auto device = rt.current_device(&ordinal);
  if (!device) return call();
  if (default_pool) {
    DriverApi& d = driver_api();
    if (d.device_get_mem_pool == nullptr ||
        d.device_get_mem_pool(&pool, static_cast<CUdevice>(ordinal)) != CUDA_SUCCESS)
      return call();
  }
  const auto key = reinterpret_cast<std::uint64_t>(pool);
  if (!rt.admit([&] { return acct->pool_reserve(*device, key, bytes); }))
    return CUDA_ERROR_OUT_OF_MEMORY;
  const CUresult rc = call();
  if (rc != CUDA_SUCCESS) {
    acct->pool_cancel(key, bytes);
    return rc;
  }
  if (dptr != nullptr) acct->pool_commit(*dptr, key, bytes);
  if (const auto reserved = pool_reserved(pool)) acct->pool_settle(key, *reserved);
  return rc;
}

CUresult pool_free(CUdeviceptr dptr, CUstream stream, Stream variant,
                   const std::function<CUresult()>& call) {
  memquota::ProcessAccount* acct = Runtime::get().account();
  if (acct == nullptr || stream_capturing(stream, variant == Stream::per_thread)) return call();
  const auto a = acct->pool_take(dptr);
  const CUresult rc = call();
  if (!a) return rc;
  if (rc != CUDA_SUCCESS) {
    acct->pool_restore(dptr, *a);
    return rc;
  }
  acct->pool_credit(*a);
  return rc;
}

CUresult mem_pool_trim(PFN_cuMemPoolTrimTo_v11020 real, CUmemoryPool pool, size_t keep) {
  const CUresult rc = real(pool, keep);
  memquota::ProcessAccount* acct = Runtime::get().account();
  if (rc == CUDA_SUCCESS && acct != nullptr) {
    if (const auto reserved = pool_reserved(pool))
      acct->pool_settle(reinterpret_cast<std::uint64_t>(pool), *reserved);
  }
  return rc;
}

CUresult mem_pool_destroy(PFN_cuMemPoolDestroy_v11020 real, CUmemoryPool pool) {
  const CUresult rc = real(pool);
  memquota::ProcessAccount* acct = Runtime::get().account();
  if (rc == CUDA_SUCCESS && acct != nullptr)
    acct->pool_forget(reinterpret_cast<std::uint64_t>(pool));
  return rc;
}

}  // namespace xpu::shim::handlers
