// CUDA arrays and mipmapped arrays: admitted on an estimate from the descriptor, then charged
// exactly what the driver reports it needs (cu[Mipmapped]ArrayGetMemoryRequirements).
#include "driver/driver_api.hpp"
#include "handlers/handlers.hpp"
#include "runtime/runtime.hpp"

namespace xpu::shim::handlers {
namespace {

std::uint64_t element_bytes(CUarray_format format) {
  switch (format) {
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF:
      return 2;
    case CU_AD_FORMAT_UNSIGNED_INT32:
    case CU_AD_FORMAT_SIGNED_INT32:
    case CU_AD_FORMAT_FLOAT:
      return 4;
    default:
      return 1;  // 8-bit and packed/compressed formats: the settlement corrects the estimate
  }
}

}  // namespace

std::uint64_t estimate_array_bytes(std::size_t width, std::size_t height, std::size_t depth,
                                   CUarray_format format, unsigned int channels) {
  const std::uint64_t h = height == 0 ? 1 : height;
  const std::uint64_t d = depth == 0 ? 1 : depth;
  const std::uint64_t c = channels == 0 ? 1 : channels;
  return static_cast<std::uint64_t>(width) * h * d * c * element_bytes(format);
}

std::uint64_t array_requirement(CUarray array, std::uint64_t fallback) {
  DriverApi& d = driver_api();
  int ordinal = 0;
  if (d.array_get_memory_requirements == nullptr || !Runtime::get().current_device(&ordinal))
    return fallback;
  CUDA_ARRAY_MEMORY_REQUIREMENTS req{};
  if (d.array_get_memory_requirements(&req, array, ordinal) != CUDA_SUCCESS) return fallback;
  return req.size;
}

std::uint64_t mipmapped_requirement(CUmipmappedArray array, std::uint64_t fallback) {
  DriverApi& d = driver_api();
  int ordinal = 0;
  if (d.mipmapped_array_get_memory_requirements == nullptr ||
      !Runtime::get().current_device(&ordinal))
    return fallback;
  CUDA_ARRAY_MEMORY_REQUIREMENTS req{};
  if (d.mipmapped_array_get_memory_requirements(&req, array, ordinal) != CUDA_SUCCESS)
    return fallback;
  return req.size;
}

CUresult mipmapped_array_create(PFN_cuMipmappedArrayCreate_v5000 real, CUmipmappedArray* handle,
                                const CUDA_ARRAY3D_DESCRIPTOR* desc, unsigned int levels) {
  std::uint64_t estimate = 0;
  if (desc != nullptr) {
    // In 2D each level is a quarter of the one before, so the whole chain stays below 4/3 of
    // the base level (8/7 in 3D): 4/3 of the base is a safe estimate.
    const std::uint64_t base = estimate_array_bytes(desc->Width, desc->Height, desc->Depth,
                                                    desc->Format, desc->NumChannels);
    estimate = levels <= 1 ? base : base + base / 3;
  }
  CUresult refusal = CUDA_SUCCESS;
  const auto t = begin_alloc(estimate, std::nullopt, &refusal);
  if (!t) return refusal;
  const CUresult rc = real(handle, desc, levels);
  const CUmipmappedArray made = rc == CUDA_SUCCESS && handle != nullptr ? *handle : nullptr;
  end_alloc(*t, rc, memquota::AllocKind::mipmapped_array, reinterpret_cast<std::uint64_t>(made),
            made != nullptr && t->accounted ? mipmapped_requirement(made, estimate) : estimate);
  return rc;
}

CUresult array_destroy(PFN_cuArrayDestroy_v2000 real, CUarray array) {
  const auto key = reinterpret_cast<std::uint64_t>(array);
  const auto a = begin_free(memquota::AllocKind::array, key);
  const CUresult rc = real(array);
  end_free(a, rc, memquota::AllocKind::array, key);
  return rc;
}

CUresult mipmapped_array_destroy(PFN_cuMipmappedArrayDestroy_v5000 real, CUmipmappedArray array) {
  const auto key = reinterpret_cast<std::uint64_t>(array);
  const auto a = begin_free(memquota::AllocKind::mipmapped_array, key);
  const CUresult rc = real(array);
  end_free(a, rc, memquota::AllocKind::mipmapped_array, key);
  return rc;
}

}  // namespace xpu::shim::handlers
