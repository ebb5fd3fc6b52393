# pecd_module(NAME [DEPS target...])
# Builds src/NAME/*.cpp into the static library pecd_NAME. Sources are globbed so that
# a module's owner adds files without editing any shared build file.
function(pecd_module name)
  cmake_parse_arguments(M "" "" "DEPS" ${ARGN})
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  if(NOT srcs)
    # Headers only (so far): an interface library carries the include path and deps.
    add_library(pecd_${name} INTERFACE)
    target_include_directories(pecd_${name} INTERFACE ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(pecd_${name} INTERFACE ${M_DEPS})
    return()
  endif()
  add_library(pecd_${name} STATIC ${srcs})
  target_include_directories(pecd_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(pecd_${name} PRIVATE ${PECD_WARNINGS})
  target_link_libraries(pecd_${name} PUBLIC ${M_DEPS})
endfunction()

# pecd_gtest(NAME SOURCES... [DEPS ...]): one GoogleTest program, its tests registered
# with CTest one by one.
function(pecd_gtest name)
  cmake_parse_arguments(T "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_compile_options(${name} PRIVATE ${PECD_WARNINGS})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    PECD_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    PECD_BINARY_DIR="${PROJECT_BINARY_DIR}"
    PECD_SAMPLES_DIR="${PROJECT_SOURCE_DIR}/../shared/pec-samples")
  include(GoogleTest)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${T_LABELS}")
endfunction()
