# smtp_fuzz.cmake - pecd_smtp_fuzzer(NAME SOURCE): a libFuzzer target over the SMTP
# protocol state machines (server and client sessions)
include_guard(GLOBAL)
include(${CMAKE_CURRENT_LIST_DIR}/fuzzer.cmake)

function(pecd_smtp_fuzzer name source)
  pecd_fuzzer(${name}
    SOURCES ${source} ${PROJECT_SOURCE_DIR}/fuzz/common/smtp_entries.cpp
            ${PROJECT_SOURCE_DIR}/src/smtp/server_session.cpp ${PROJECT_SOURCE_DIR}/src/smtp/client.cpp
            ${PROJECT_SOURCE_DIR}/src/smtp/address.cpp
    LIBS pecd_core PkgConfig::SODIUM)
endfunction()
