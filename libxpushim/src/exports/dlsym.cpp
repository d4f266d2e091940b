// Front door 2 of 3: dlsym.
//
// LD_PRELOAD only changes the global lookup scope. cudart, cuBLAS, XLA, CuPy, PyTorch and
// nvidia-smi find the driver with dlopen + dlsym(handle, name), which searches the library behind
// the handle and never sees our exports. So dlsym itself is overridden: it asks glibc's dlsym
// exactly what the caller asked, then swaps the answer for our hook only when the answer is the
// real function of a hooked export (resolve-then-substitute). Every other name, handle and
// answer passes through untouched.
#include <dlfcn.h>
#include <link.h>

#include <cstring>

#include "driver/loader.hpp"
#include "hook_table.hpp"

namespace {

// RTLD_NEXT means "after the caller's object"; through our wrapper glibc would take the shim as
// the caller. Emulate it from the real caller: walk the link map after the caller's object and
// return the first definition that really lives in that object.
void* next_after(const void* caller, const char* name) {
  const xpu::shim::DlsymFn dlsym_fn = xpu::shim::real_dlsym();
  Dl_info info;
  struct link_map* caller_map = nullptr;
  if (::dladdr1(caller, &info, reinterpret_cast<void**>(&caller_map), RTLD_DL_LINKMAP) == 0 ||
      caller_map == nullptr)
    return dlsym_fn(RTLD_NEXT, name);
  for (struct link_map* l = caller_map->l_next; l != nullptr; l = l->l_next) {
    void* h = ::dlopen(l->l_name[0] != '\0' ? l->l_name : nullptr, RTLD_LAZY | RTLD_NOLOAD);
    if (h == nullptr) continue;
    void* p = dlsym_fn(h, name);
    ::dlclose(h);
    if (p == nullptr) continue;
    Dl_info where;
    struct link_map* owner = nullptr;
    if (::dladdr1(p, &where, reinterpret_cast<void**>(&owner), RTLD_DL_LINKMAP) != 0 && owner == l)
      return p;
  }
  return nullptr;
}

}  // namespace

extern "C" XPU_EXPORT void* dlsym(void* handle, const char* name) noexcept {
  const xpu::shim::DlsymFn dlsym_fn = xpu::shim::real_dlsym();
  if (dlsym_fn == nullptr) return nullptr;
  void* p =
      handle == RTLD_NEXT ? next_after(__builtin_return_address(0), name) : dlsym_fn(handle, name);
  if (p == nullptr || handle == RTLD_NEXT) return p;
  if (name[0] == 'c' && name[1] == 'u') return xpu::shim::substitute_cuda(p);
  if (std::strncmp(name, "nvml", 4) == 0) return xpu::shim::substitute_nvml(p);
  return p;
}
