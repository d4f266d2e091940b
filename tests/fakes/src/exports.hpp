// The generated export tables (fake_exports.c) as seen from C++.
#pragma once

extern "C" {
typedef int (*xpu_fake_fn)(void);
extern const xpu_fake_fn xpu_fake_export_addrs[];
extern const char* const xpu_fake_export_names[];
extern const int xpu_fake_export_count;
}

#define XPU_FAKE_EXPORT __attribute__((visibility("default")))

namespace xpu_fake {
// Index of an export name in the sorted table; -1 if libcuda 13.0 has no such export.
int export_index(const char* name);
// Address of this library's own definition of export id (bound locally by -Bsymbolic, so an
// LD_PRELOADed library exporting the same name does not change it).
void* export_address(int id);
}  // namespace xpu_fake
