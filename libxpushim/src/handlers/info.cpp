// The virtual view: what a process under a quota is told about device memory.
#include "handlers/handlers.hpp"
#include "hook_table.hpp"
#include "runtime/runtime.hpp"
#include "xpu/memquota/ledger.hpp"
#include "xpu/memquota/view.hpp"

namespace xpu::shim::handlers {
namespace {

std::optional<std::uint64_t> configured_quota(memquota::ProcessAccount& acct,
                                              std::uint32_t device) {
  const std::uint64_t q = acct.quota(device);
  if (q == memquota::kUnlimited || q == memquota::kQuotaUnset) return std::nullopt;
  return q;
}

}  // namespace

CUresult view_mem_get_info(std::uint64_t* free, std::uint64_t* total) {
  Runtime& rt = Runtime::get();
  if (rt.ensure_initialised() != Mode::enforcing || rt.account() == nullptr)
    return CUDA_ERROR_NOT_SUPPORTED;
  const auto device = rt.current_device();
  if (!device) return CUDA_ERROR_NOT_SUPPORTED;
  memquota::ProcessAccount& acct = *rt.account();
  const auto quota = configured_quota(acct, *device);
  if (!quota) return CUDA_ERROR_NOT_SUPPORTED;
  // The real free memory is needed even when the caller asked only for the total.
  const auto real_info = real<CudaHook::cuMemGetInfo_v2, PFN_cuMemGetInfo_v3020>();
  std::size_t real_free = 0, real_total = 0;
  if (real_info == nullptr || real_info(&real_free, &real_total) != CUDA_SUCCESS)
    return CUDA_ERROR_NOT_SUPPORTED;
  // Frameworks size themselves from this answer: make it current (dead neighbours' memory,
  // pool reservations), at most ten times a second.
  rt.reclaim(/*force=*/false);
  const memquota::MemoryView view =
      memquota::virtual_view(*quota, acct.group_usage(*device), real_free);
  *free = view.free;
  *total = view.total;
  return CUDA_SUCCESS;
}

std::optional<std::uint64_t> quota_of_ordinal(int ordinal) {
  Runtime& rt = Runtime::get();
  if (rt.ensure_initialised() != Mode::enforcing || rt.account() == nullptr) return std::nullopt;
  const auto device = rt.device_of_ordinal(ordinal);
  if (!device) return std::nullopt;
  return configured_quota(*rt.account(), *device);
}

}  // namespace xpu::shim::handlers
