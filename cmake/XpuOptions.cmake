# Build switches. XPU_DEVELOPER_BUILD is the umbrella that CI turns on: tests and -Werror.
option(XPU_DEVELOPER_BUILD "Build tests and treat warnings as errors" OFF)
option(XPU_BUILD_TESTS "Build the test suites (unit, handler, preload)" ON)
option(XPU_WERROR "Treat compiler warnings as errors" ${XPU_DEVELOPER_BUILD})
option(XPU_BUILD_GPU_TESTS "Build the real-GPU programs in tests/gpu and bench (needs nvcc)" OFF)
option(XPU_BUILD_BENCH "Build the benchmarks in bench/" OFF)
set(XPU_CUDA_INCLUDE_DIR "/usr/local/cuda/include" CACHE PATH
    "Directory holding cuda.h and cudaTypedefs.h (headers only; libcuda is never linked)")
