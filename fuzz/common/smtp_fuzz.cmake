# smtp_fuzz.cmake - pecd_smtp_fuzzer(NAME SOURCE): a libFuzzer target over the SMTP
# protocol state machines (server and client sessions)
#
# The protocol sources are compiled into each fuzzer itself (not taken from pecd_smtp) so
# that libFuzzer's coverage instrumentation and the sanitizers see them.
include_guard(GLOBAL)

function(pecd_smtp_fuzzer name source)
  add_executable(${name} ${source}
    ${PROJECT_SOURCE_DIR}/fuzz/common/smtp_entries.cpp
    ${PROJECT_SOURCE_DIR}/src/smtp/server_session.cpp
    ${PROJECT_SOURCE_DIR}/src/smtp/client.cpp
    ${PROJECT_SOURCE_DIR}/src/smtp/address.cpp)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/fuzz/common)
  target_compile_options(${name} PRIVATE ${PECD_WARNINGS} -g -O1 -fno-omit-frame-pointer
                         -fsanitize=fuzzer,address,undefined)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(${name} PRIVATE pecd_core PkgConfig::SODIUM)
endfunction()
