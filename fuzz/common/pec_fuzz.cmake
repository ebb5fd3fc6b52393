# pec_fuzz.cmake - pecd_pec_fuzzer(NAME SOURCE): a libFuzzer target over the PEC reading side
include_guard(GLOBAL)
include(${CMAKE_CURRENT_LIST_DIR}/fuzzer.cmake)

function(pecd_pec_fuzzer name source)
  # pec/daticert_dtd.hpp is generated when src/pec is configured (configure_file).
  pecd_fuzzer(${name}
    SOURCES ${source} ${PROJECT_SOURCE_DIR}/src/crypto/smime.cpp ${PROJECT_SOURCE_DIR}/src/crypto/cms.cpp
            ${PROJECT_SOURCE_DIR}/src/pec/signed_message.cpp ${PROJECT_SOURCE_DIR}/src/pec/classify.cpp
            ${PROJECT_SOURCE_DIR}/src/pec/verify.cpp ${PROJECT_SOURCE_DIR}/src/pec/daticert.cpp
            ${PROJECT_SOURCE_DIR}/fuzz/common/pec_entries.cpp
    LIBS pecd_core PkgConfig::GMIME PkgConfig::LIBXML2 OpenSSL::Crypto
    INCLUDES ${PROJECT_BINARY_DIR}/src/pec/generated)
endfunction()
