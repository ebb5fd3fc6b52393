# pec_fuzz.cmake - pecd_pec_fuzzer(NAME SOURCE): a libFuzzer target over the PEC reading side
#
# The reading sources are compiled into each fuzzer itself (not taken from the pecd_*
# libraries) so that libFuzzer's coverage instrumentation and the sanitizers see them;
# everything else comes from the libraries, uninstrumented.
include_guard(GLOBAL)

function(pecd_pec_fuzzer name source)
  # Inside the function: a variable set at include time would exist only in the first
  # including directory (include_guard skips the others).
  set(reading_sources
    ${PROJECT_SOURCE_DIR}/src/crypto/smime.cpp
    ${PROJECT_SOURCE_DIR}/src/crypto/cms.cpp
    ${PROJECT_SOURCE_DIR}/src/pec/signed_message.cpp
    ${PROJECT_SOURCE_DIR}/src/pec/classify.cpp
    ${PROJECT_SOURCE_DIR}/src/pec/verify.cpp
    ${PROJECT_SOURCE_DIR}/src/pec/daticert.cpp
    ${PROJECT_SOURCE_DIR}/fuzz/common/pec_entries.cpp)
  add_executable(${name} ${source} ${reading_sources})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/fuzz/common
                             ${PROJECT_BINARY_DIR}/src/pec/generated)
  target_compile_options(${name} PRIVATE ${PECD_WARNINGS} -g -O1 -fno-omit-frame-pointer
                         -fsanitize=fuzzer,address,undefined)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  # pec/daticert_dtd.hpp is generated when src/pec is configured (configure_file).
  target_link_libraries(${name} PRIVATE pecd_core PkgConfig::GMIME PkgConfig::LIBXML2 OpenSSL::Crypto)
endfunction()
