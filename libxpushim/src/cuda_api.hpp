// The one way xpushim's sources include the CUDA driver API headers.
//
// __CUDA_API_VERSION_INTERNAL makes cuda.h declare every exported ABI under its real name
// (cuMemAlloc is the CUDA 2.0 ABI, cuMemAlloc_v2 the current one; no renaming macros) and
// cudaTypedefs.h define the PFN types of the legacy variants too. That is what a library
// exporting each variant separately needs; it is also how the driver itself is built.
#pragma once

#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <cudaTypedefs.h>
