# Catch2 2.13 (Debian 12) and 3.x (the GPU machine) both work. Tests include
# "xpu_catch.hpp" (tests/support), which picks the right header; link xpu::catch2.
find_package(Catch2 3 QUIET)
add_library(xpu_catch2 INTERFACE)
add_library(xpu::catch2 ALIAS xpu_catch2)
target_include_directories(xpu_catch2 INTERFACE "${PROJECT_SOURCE_DIR}/tests/support")
if(Catch2_FOUND)
  target_link_libraries(xpu_catch2 INTERFACE Catch2::Catch2WithMain)
  target_compile_definitions(xpu_catch2 INTERFACE XPU_CATCH2_V3=1)
  set(XPU_CATCH2_RUN_ARGS "")  # 3.x: a run in which no test ran fails already
else()
  find_package(Catch2 2 REQUIRED)
  add_library(xpu_catch2_main STATIC "${PROJECT_SOURCE_DIR}/tests/support/catch2_main.cpp")
  target_link_libraries(xpu_catch2_main PUBLIC Catch2::Catch2)
  target_link_libraries(xpu_catch2 INTERFACE xpu_catch2_main Catch2::Catch2)
  set(XPU_CATCH2_RUN_ARGS --warn NoTests)  # 2.13: "No tests ran" exits 0 without it
endif()
include(Catch)

# Every test binary registers its cases through this, never catch_discover_tests directly: a case
# whose name the registration cannot pass through intact (Catch2 2.13 splits names at ';') would
# match nothing, and such a run must fail, not pass. (3.x rejects `--warn NoTests`.)
function(xpu_discover_tests target)
  catch_discover_tests(${target} EXTRA_ARGS ${XPU_CATCH2_RUN_ARGS} ${ARGN})
endfunction()
