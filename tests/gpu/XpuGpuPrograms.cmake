# Shared by tests/gpu and bench: turn on the CUDA language for the real-GPU programs, or warn and let
# the caller skip them. Include at directory scope (enable_language may not run inside a function):
#
#   include(${PROJECT_SOURCE_DIR}/tests/gpu/XpuGpuPrograms.cmake)
#   if(NOT XPU_GPU_CUDA_OK)
#     return()
#   endif()
#
# Only these programs link the CUDA runtime or -lcuda; the shim never does.
set(XPU_GPU_CUDA_OK OFF)
include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(WARNING "xpushim: no CUDA compiler found (nvcc); skipping the GPU programs in "
                  "${CMAKE_CURRENT_SOURCE_DIR}")
  return()
endif()
# Hopper (H100) is the card the suite runs on; a cache entry or -D on the command line wins.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90)
endif()
enable_language(CUDA)
find_package(CUDAToolkit QUIET)
if(NOT TARGET CUDA::cuda_driver)
  message(WARNING "xpushim: CUDA toolkit (libcuda stub) not found; skipping the GPU programs in "
                  "${CMAKE_CURRENT_SOURCE_DIR}")
  return()
endif()
set(XPU_GPU_CUDA_OK ON)

# Output next to the CMakeLists' binary dir (build/tests/gpu, build/bench), whatever the top level
# sets, because run_all.sh looks for the programs there.
function(xpu_gpu_program_settings target)
  set_target_properties(${target} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}")
  get_target_property(sources ${target} SOURCES)
  list(FILTER sources INCLUDE REGEX "\\.cu$")
  if(sources)
    # nvcc does not take g++ warning flags directly; hand them to the host compiler. No -Werror here:
    # nvcc's generated host stubs are outside our control.
    set_target_properties(${target} PROPERTIES CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
  elseif(COMMAND xpu_target_warnings)
    xpu_target_warnings(${target})
  else()
    target_compile_options(${target} PRIVATE -Wall -Wextra)
  endif()
  target_include_directories(${target} PRIVATE "${PROJECT_SOURCE_DIR}/tests/gpu")
endfunction()

# A CUDA C++ program built the way nvcc builds by default (static cudart), so its driver calls take
# cudart's dlsym("cuGetProcAddress_v2") path. Extra arguments are more sources.
function(xpu_add_cuda_program target)
  add_executable(${target} ${ARGN})
  set_target_properties(${target} PROPERTIES CUDA_RUNTIME_LIBRARY Static)
  xpu_gpu_program_settings(${target})
endfunction()
