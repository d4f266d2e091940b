// cuGetProcAddress / cuGetProcAddress_v2 with driver 580's measured rules (research §1.6):
//   flags & ~3                -> CUDA_ERROR_INVALID_VALUE, *pfn and *status untouched
//   cudaVersion > 13000       -> CUDA_ERROR_INVALID_VALUE, untouched
//   not a base name           -> CUDA_SUCCESS, status SYMBOL_NOT_FOUND, *pfn = NULL
//   per-thread flag (2, or 3) and the symbol has _ptds/_ptsz variants
//                             -> newest per-thread variant introduced <= cudaVersion
//   otherwise                 -> newest legacy variant introduced <= cudaVersion
//   none of those             -> CUDA_SUCCESS, status VERSION_NOT_SUFFICIENT, *pfn = NULL
// The rows come from the measured table (tests/data/driver580-getprocaddress-map.tsv) at build
// time. Note the real driver does NOT fall back to the legacy variant for symbols that have
// per-thread twins (cuLaunchKernel@6050 flags 2 -> NULL/2).
#include <algorithm>
#include <cstring>
#include <vector>

#include "exports.hpp"
#include "fake_common.hpp"

namespace {

struct GpaRow {
  const char* base;
  int version;  // cudaVersion that introduced this variant
  int per_thread;
  int export_id;
};

constexpr GpaRow kRows[] = {
#include "gpa_table.inc"
};

// Sorted by (base, per_thread, version) once; lookups binary-search the base name.
const std::vector<GpaRow>& rows() {
  static const std::vector<GpaRow>* r = [] {
    auto* v = new std::vector<GpaRow>(std::begin(kRows), std::end(kRows));
    std::sort(v->begin(), v->end(), [](const GpaRow& a, const GpaRow& b) {
      int c = strcmp(a.base, b.base);
      if (c != 0) return c < 0;
      if (a.per_thread != b.per_thread) return a.per_thread < b.per_thread;
      return a.version < b.version;
    });
    return v;
  }();
  return *r;
}

CUresult lookup(const char* symbol, void** pfn, int cuda_version, cuuint64_t flags,
                CUdriverProcAddressQueryResult* status) {
  if (symbol == nullptr || pfn == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const cuuint64_t known =
      CU_GET_PROC_ADDRESS_LEGACY_STREAM | CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
  if ((flags & ~known) != 0) return CUDA_ERROR_INVALID_VALUE;
  if (cuda_version > xpu_fake::kDriverVersion) return CUDA_ERROR_INVALID_VALUE;

  const auto& r = rows();
  auto lo = std::lower_bound(r.begin(), r.end(), symbol, [](const GpaRow& row, const char* s) {
    return strcmp(row.base, s) < 0;
  });
  auto hi = lo;
  while (hi != r.end() && strcmp(hi->base, symbol) == 0) ++hi;
  if (lo == hi) {
    *pfn = nullptr;
    if (status != nullptr) *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    return CUDA_SUCCESS;
  }
  const bool has_twins = std::any_of(lo, hi, [](const GpaRow& x) { return x.per_thread != 0; });
  const int want = ((flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0 && has_twins);
  const GpaRow* best = nullptr;
  for (auto it = lo; it != hi; ++it) {
    if (it->per_thread == want && it->version <= cuda_version) best = &*it;  // sorted by version
  }
  if (best == nullptr) {
    *pfn = nullptr;
    if (status != nullptr) *status = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
    return CUDA_SUCCESS;
  }
  *pfn = xpu_fake::export_address(best->export_id);
  if (status != nullptr) *status = CU_GET_PROC_ADDRESS_SUCCESS;
  return CUDA_SUCCESS;
}

}  // namespace

extern "C" {

XPU_FAKE_EXPORT CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int cudaVersion,
                                             cuuint64_t flags,
                                             CUdriverProcAddressQueryResult* symbolStatus) {
  XPU_FAKE_API(cuGetProcAddress_v2, return lookup(symbol, pfn, cudaVersion, flags, symbolStatus););
}

// The 4-argument CUDA 11.3 ABI, still exported under the plain name.
XPU_FAKE_EXPORT CUresult cuGetProcAddress(const char* symbol, void** pfn, int cudaVersion,
                                          cuuint64_t flags) {
  XPU_FAKE_API(cuGetProcAddress, return lookup(symbol, pfn, cudaVersion, flags, nullptr););
}

// NVIDIA's private tables: real cudart cannot run on this fake (research §7).
XPU_FAKE_EXPORT CUresult cuGetExportTable(const void** ppExportTable,
                                          const CUuuid* pExportTableId) {
  XPU_FAKE_API(cuGetExportTable, {
    (void)pExportTableId;
    if (ppExportTable != nullptr) *ppExportTable = nullptr;
    return CUDA_ERROR_NOT_SUPPORTED;
  });
}

}  // extern "C"
