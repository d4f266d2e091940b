# Third-party pieces. The CUDA driver API and NVML are headers only ("nolink" targets): the shim
# loads libcuda.so.1 and libnvidia-ml.so.1 at run time through the normal library search path.
find_package(Threads REQUIRED)
find_package(Boost 1.74 REQUIRED)  # Boost.Interprocess is header-only
find_package(fmt REQUIRED)         # used header-only (fmt::fmt-header-only), hidden in the shim

if(NOT EXISTS "${XPU_CUDA_INCLUDE_DIR}/cuda.h" OR NOT EXISTS "${XPU_CUDA_INCLUDE_DIR}/cudaTypedefs.h")
  message(FATAL_ERROR "xpushim: cuda.h and cudaTypedefs.h not found in XPU_CUDA_INCLUDE_DIR="
                      "'${XPU_CUDA_INCLUDE_DIR}'. Install the CUDA toolkit headers or set it.")
endif()
add_library(xpu_cuda_headers INTERFACE)
add_library(xpu::cuda_headers ALIAS xpu_cuda_headers)
target_include_directories(xpu_cuda_headers SYSTEM INTERFACE "${XPU_CUDA_INCLUDE_DIR}")

add_library(xpu_fmt INTERFACE)
add_library(xpu::fmt ALIAS xpu_fmt)
if(TARGET fmt::fmt-header-only)
  target_link_libraries(xpu_fmt INTERFACE fmt::fmt-header-only)
else()
  target_link_libraries(xpu_fmt INTERFACE fmt::fmt)
endif()

add_library(xpu_boost INTERFACE)
add_library(xpu::boost ALIAS xpu_boost)
target_include_directories(xpu_boost SYSTEM INTERFACE ${Boost_INCLUDE_DIRS})
target_link_libraries(xpu_boost INTERFACE Threads::Threads)
if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
  target_link_libraries(xpu_boost INTERFACE rt)
endif()
