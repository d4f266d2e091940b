# xpu_target_warnings(target): the project's warning set, -Werror when XPU_WERROR is on.
function(xpu_target_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                           -Wold-style-cast -Wcast-align -Wnull-dereference
                                           -Wformat=2 -Wimplicit-fallthrough)
  if(XPU_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# Same for C sources (the simulated driver's generated stubs).
function(xpu_target_c_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  if(XPU_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
