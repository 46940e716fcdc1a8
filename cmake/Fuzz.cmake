# TRELLIS_FUZZ: the libFuzzer targets of fuzz/ need clang (Debian's clang-14 with libclang-rt-14-dev
# ships libFuzzer). This outer build (any compiler) configures a second build of the library
# layers and the fuzzers with clang under ${CMAKE_BINARY_DIR}/fuzz and registers one ctest per
# fuzzer that runs it for a few seconds (TRELLIS_FUZZ_SECONDS) on its seeds. Without a working
# clang/libFuzzer the tests are one skipped test saying why. scripts/fuzz.sh does the long runs.
include(${CMAKE_SOURCE_DIR}/fuzz/targets.cmake)
set(TRELLIS_FUZZ_SECONDS 4 CACHE STRING "seconds each fuzzer runs in the test suite")
find_program(TRELLIS_FUZZ_CXX NAMES clang++-14 clang++)
find_program(TRELLIS_FUZZ_CC NAMES clang-14 clang)
# Symbolized reports of a crash (llvm-14; without it the stacks are bare addresses).
find_program(TRELLIS_FUZZ_SYMBOLIZER NAMES llvm-symbolizer-14 llvm-symbolizer PATHS /usr/lib/llvm-14/bin)
set(fuzz_ok FALSE)
set(fuzz_why "no clang++ found (scripts/deps.sh installs clang-14 and libclang-rt-14-dev)")
if(TRELLIS_FUZZ_CXX AND TRELLIS_FUZZ_CC)
  set(probe_dir ${CMAKE_BINARY_DIR}/fuzz-probe)
  file(MAKE_DIRECTORY ${probe_dir})
  file(WRITE ${probe_dir}/probe.cc
       "#include <cstddef>\n#include <cstdint>\nextern \"C\" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n")
  execute_process(COMMAND ${TRELLIS_FUZZ_CXX} -fsanitize=fuzzer,address,undefined ${probe_dir}/probe.cc -o ${probe_dir}/probe
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc EQUAL 0)
    set(fuzz_ok TRUE)
  else()
    set(fuzz_why "${TRELLIS_FUZZ_CXX} cannot link -fsanitize=fuzzer,address,undefined (libclang-rt-14-dev missing?)")
  endif()
endif()

if(NOT fuzz_ok)
  message(STATUS "fuzzers: skipped: ${fuzz_why}")
  add_test(NAME fuzz.unavailable COMMAND sh -c "echo 'fuzzers skipped: ${fuzz_why}'; exit 77")
  set_tests_properties(fuzz.unavailable PROPERTIES SKIP_RETURN_CODE 77 LABELS fuzz)
  return()
endif()
message(STATUS "fuzzers: ${TRELLIS_FUZZ_CXX} (build in ${CMAKE_BINARY_DIR}/fuzz)")

include(ExternalProject)
set(fuzz_bin ${CMAKE_BINARY_DIR}/fuzz)
# The outer build's compiler launcher (ccache), when it was given as a cache variable.
set(fuzz_launcher "")
foreach(lang C CXX)
  if(CMAKE_${lang}_COMPILER_LAUNCHER)
    list(APPEND fuzz_launcher "-DCMAKE_${lang}_COMPILER_LAUNCHER=${CMAKE_${lang}_COMPILER_LAUNCHER}")
  endif()
endforeach()
set(fuzz_outputs "")
foreach(f ${TRELLIS_FUZZERS})
  list(APPEND fuzz_outputs ${fuzz_bin}/fuzz/${f})
endforeach()
ExternalProject_Add(trellis_fuzzers
  SOURCE_DIR ${CMAKE_SOURCE_DIR}
  BINARY_DIR ${fuzz_bin}
  CMAKE_GENERATOR ${CMAKE_GENERATOR}
  CMAKE_ARGS -DCMAKE_CXX_COMPILER=${TRELLIS_FUZZ_CXX} -DCMAKE_C_COMPILER=${TRELLIS_FUZZ_CC}
             # -O1 with line tables: quick to compile, symbolized reports; assertions stay on.
             -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -gline-tables-only"
             "-DCMAKE_C_FLAGS_DEBUG=-O1 -gline-tables-only" -DTRELLIS_FUZZ_BUILD=ON -DTRELLIS_WERROR=OFF
             -DTRELLIS_BUILD_TESTS=OFF -DTRELLIS_BUILD_BENCH=OFF ${fuzz_launcher}
  # Stamps inside the sub-build's folder: deleting BUILD/fuzz then reconfigures it (with the
  # default stamp folder the configure step was considered done and the build failed).
  STAMP_DIR ${fuzz_bin}/stamp
  BUILD_COMMAND ${CMAKE_COMMAND} --build ${fuzz_bin} --target fuzzers
  BUILD_BYPRODUCTS ${fuzz_outputs}
  INSTALL_COMMAND ""
  BUILD_ALWAYS ON
  USES_TERMINAL_BUILD ON)

set(fuzz_env "ASAN_OPTIONS=detect_leaks=1" "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
if(TRELLIS_FUZZ_SYMBOLIZER)
  list(APPEND fuzz_env "ASAN_SYMBOLIZER_PATH=${TRELLIS_FUZZ_SYMBOLIZER}")
endif()

# Seeds: fuzz/seeds/<name>, the shared fixtures when present, and the tests' own data files.
set(fixtures "")
foreach(d ${CMAKE_SOURCE_DIR}/../shared/fixtures /work/shared/fixtures)
  if(EXISTS ${d}/nccl-topo AND NOT fixtures)
    set(fixtures ${d})
  endif()
endforeach()
set(seed_files_fuzz_nccl_xml "${fixtures}/nccl-topo/*.xml")
set(seed_files_fuzz_hwloc_xml "${fixtures}/real-topo/hwloc-*.xml")
set(seed_files_fuzz_smi_matrix "${fixtures}/real-topo/nvidia-smi-topo-m-*.txt")
set(seed_files_fuzz_ibnetdiscover "${fixtures}/real-topo/ibnetdiscover-*.out")
set(seed_files_fuzz_cluster_file "${CMAKE_SOURCE_DIR}/tests/topo_fabric/data/*.json")
# Inputs longer than this are cut (the ibnetdiscover and hwloc fixtures are longer; their head
# still parses).
set(max_len_default 65536)
set(max_len_fuzz_ibnetdiscover 131072)
foreach(f ${TRELLIS_FUZZERS})
  set(seeds ${CMAKE_BINARY_DIR}/fuzz-seeds/${f})
  file(REMOVE_RECURSE ${seeds})
  # The test suite's few seconds grow their own corpus (fuzz-corpus-test): the long runs'
  # (scripts/fuzz.sh, fuzz-corpus) can hold inputs that take a minute to replay, which a 120 s test
  # must not inherit.
  file(MAKE_DIRECTORY ${seeds} ${CMAKE_BINARY_DIR}/fuzz-corpus/${f} ${CMAKE_BINARY_DIR}/fuzz-corpus-test/${f}
       ${CMAKE_BINARY_DIR}/fuzz-artifacts)
  file(GLOB own ${CMAKE_SOURCE_DIR}/fuzz/seeds/${f}/*)
  set(extra "")
  if(DEFINED seed_files_${f} AND (fixtures OR f STREQUAL "fuzz_cluster_file"))
    file(GLOB extra ${seed_files_${f}})
  endif()
  if(own OR extra)
    file(COPY ${own} ${extra} DESTINATION ${seeds})
  endif()
  set(max_len ${max_len_default})
  if(DEFINED max_len_${f})
    set(max_len ${max_len_${f}})
  endif()
  string(REPLACE "fuzz_" "" short ${f})
  add_test(NAME fuzz.${short}
           COMMAND ${fuzz_bin}/fuzz/${f} -max_total_time=${TRELLIS_FUZZ_SECONDS} -timeout=25 -rss_limit_mb=3072
                   -max_len=${max_len} -print_final_stats=1
                   -artifact_prefix=${CMAKE_BINARY_DIR}/fuzz-artifacts/${f}-
                   ${CMAKE_BINARY_DIR}/fuzz-corpus-test/${f} ${seeds})
  set_tests_properties(fuzz.${short} PROPERTIES LABELS fuzz TIMEOUT 120
                       ENVIRONMENT "${fuzz_env}")
endforeach()
