# Compiler flags shared by every project target (applied through blockserve_options).
add_library(blockserve_options INTERFACE)
target_include_directories(blockserve_options INTERFACE
    ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR}/proto_gen)
target_compile_options(blockserve_options INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter -Wno-sign-compare>)
if(BLOCKSERVE_NATIVE)
  target_compile_options(blockserve_options INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-march=native>)
endif()
