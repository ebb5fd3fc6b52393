# fuzzer.cmake - pecd_fuzzer(NAME SOURCES src... LIBS lib... [INCLUDES dir...]): one
# libFuzzer target, built by clang with ASan and UBSan
#
# The code under test is listed in SOURCES and compiled into the fuzzer itself (not taken
# from the pecd_* libraries) so that libFuzzer's coverage instrumentation and the
# sanitizers see it; what it needs besides comes from LIBS, uninstrumented.
include_guard(GLOBAL)

function(pecd_fuzzer name)
  cmake_parse_arguments(F "" "" "SOURCES;LIBS;INCLUDES" ${ARGN})
  add_executable(${name} ${F_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/fuzz/common
                             ${F_INCLUDES})
  target_compile_options(${name} PRIVATE ${PECD_WARNINGS} -g -O1 -fno-omit-frame-pointer
                         -fsanitize=fuzzer,address,undefined)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(${name} PRIVATE ${F_LIBS})
endfunction()
