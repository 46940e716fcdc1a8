# Optional CUDA support (docs/GPU.md) and the trellis_cuda layer (src/cuda).
#
# TRELLIS_WITH_CUDA: AUTO (default; on when nvcc and cuda.h are found), ON (fail when they are not)
# or OFF. Nothing links against libcuda or libcudart: the driver is loaded with dlopen at run time
# (src/cuda/driver.cc) and the reduction kernels are an nvcc-built fatbin embedded in the library
# and loaded with cuModuleLoadData, so libtrellis.so loads and runs on host buffers where no NVIDIA
# driver is installed. nvcc runs once, on one file (src/cuda/reduce_kernels.cu), with warnings as
# errors; the host code is compiled by the host compiler with the project's flags.
set(TRELLIS_WITH_CUDA AUTO CACHE STRING "CUDA support: AUTO (when nvcc and cuda.h are found), ON or OFF")
set_property(CACHE TRELLIS_WITH_CUDA PROPERTY STRINGS AUTO ON OFF)
set(TRELLIS_CUDA_ARCHS "-gencode=arch=compute_80,code=sm_80;-gencode=arch=compute_90,code=[sm_90,compute_90]"
    CACHE STRING "nvcc -gencode options of the embedded kernels (default: sm_80 and sm_90 code, compute_90 PTX)")

set(TRELLIS_HAVE_CUDA OFF)
string(TOUPPER "${TRELLIS_WITH_CUDA}" trellis_cuda_mode)
if(TRELLIS_FUZZ_BUILD)
  set(trellis_cuda_mode OFF)  # the clang fuzzer build never needs the GPU path
elseif(NOT trellis_cuda_mode STREQUAL "AUTO")
  if(TRELLIS_WITH_CUDA)
    set(trellis_cuda_mode ON)
  else()
    set(trellis_cuda_mode OFF)
  endif()
endif()
if(NOT trellis_cuda_mode STREQUAL "OFF")
  find_package(CUDAToolkit QUIET)
  set(trellis_cuda_h "")
  foreach(dir ${CUDAToolkit_INCLUDE_DIRS})
    if(NOT trellis_cuda_h AND EXISTS "${dir}/cuda.h")
      set(trellis_cuda_h "${dir}/cuda.h")
    endif()
  endforeach()
  if(CUDAToolkit_FOUND AND CUDAToolkit_NVCC_EXECUTABLE AND trellis_cuda_h)
    set(TRELLIS_HAVE_CUDA ON)
  elseif(trellis_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR "TRELLIS_WITH_CUDA=ON but the CUDA toolkit was not found (nvcc: "
                        "'${CUDAToolkit_NVCC_EXECUTABLE}', cuda.h in '${CUDAToolkit_INCLUDE_DIRS}'); set "
                        "CUDAToolkit_ROOT=/usr/local/cuda or put nvcc on PATH")
  endif()
endif()

set(trellis_cuda_dir ${CMAKE_SOURCE_DIR}/src/cuda)
if(TRELLIS_HAVE_CUDA)
  message(STATUS "CUDA support: on (nvcc ${CUDAToolkit_VERSION} at ${CUDAToolkit_NVCC_EXECUTABLE}; kernels: ${TRELLIS_CUDA_ARCHS})")
  set(TRELLIS_CUDA_FATBIN ${CMAKE_BINARY_DIR}/cuda/trellis_kernels.fatbin)
  # nvcc keeps its intermediates here: tests/cuda checks the cubins and the PTX hold every kernel.
  set(TRELLIS_CUDA_KEEP_DIR ${CMAKE_BINARY_DIR}/cuda/keep)
  add_custom_command(
    OUTPUT ${TRELLIS_CUDA_FATBIN}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${TRELLIS_CUDA_KEEP_DIR}
    COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -fatbin -std=c++17 -O3 -fmad=false -Werror all-warnings
            -Xfatbin=-compress-all -ccbin ${CMAKE_CXX_COMPILER} ${TRELLIS_CUDA_ARCHS}
            -I${CMAKE_SOURCE_DIR}/src -I${CMAKE_SOURCE_DIR}/include -I${CMAKE_BINARY_DIR}/include
            --keep --keep-dir ${TRELLIS_CUDA_KEEP_DIR}
            -o ${TRELLIS_CUDA_FATBIN} ${trellis_cuda_dir}/reduce_kernels.cu
    DEPENDS ${trellis_cuda_dir}/reduce_kernels.cu ${trellis_cuda_dir}/reduce_kernels.h
            ${CMAKE_SOURCE_DIR}/include/trellis/trellis.h
    COMMENT "nvcc: CUDA reduction kernels (${TRELLIS_CUDA_ARCHS})"
    VERBATIM)
  add_custom_target(trellis_cuda_fatbin_file DEPENDS ${TRELLIS_CUDA_FATBIN})
  # The embedding object: no compiler launcher, because ccache cannot see the .incbin'ed file.
  add_library(trellis_cuda_fatbin OBJECT ${trellis_cuda_dir}/fatbin_embed.cc)
  target_include_directories(trellis_cuda_fatbin PRIVATE ${TRELLIS_INCLUDE_DIRS})
  target_compile_definitions(trellis_cuda_fatbin PRIVATE TRELLIS_FATBIN_PATH="${TRELLIS_CUDA_FATBIN}")
  set_target_properties(trellis_cuda_fatbin PROPERTIES CXX_COMPILER_LAUNCHER "")
  set_source_files_properties(${trellis_cuda_dir}/fatbin_embed.cc PROPERTIES OBJECT_DEPENDS ${TRELLIS_CUDA_FATBIN})
  add_dependencies(trellis_cuda_fatbin trellis_cuda_fatbin_file)
  add_library(trellis_cuda STATIC ${trellis_cuda_dir}/device_common.cc ${trellis_cuda_dir}/driver.cc
              ${trellis_cuda_dir}/device.cc ${trellis_cuda_dir}/reduce_launch.cc
              ${trellis_cuda_dir}/stream_exec.cc $<TARGET_OBJECTS:trellis_cuda_fatbin>)
  # Headers only: the CUDA libraries are never linked.
  target_include_directories(trellis_cuda SYSTEM PUBLIC ${CUDAToolkit_INCLUDE_DIRS})
  target_compile_definitions(trellis_cuda PUBLIC TRELLIS_HAVE_CUDA=1)
else()
  message(STATUS "CUDA support: off (TRELLIS_WITH_CUDA=${TRELLIS_WITH_CUDA})")
  add_library(trellis_cuda STATIC ${trellis_cuda_dir}/device_common.cc ${trellis_cuda_dir}/off/device_off.cc
              ${trellis_cuda_dir}/off/stream_exec_off.cc)
endif()
target_include_directories(trellis_cuda PUBLIC ${TRELLIS_INCLUDE_DIRS})
# Seen by tests/ and the other folders (this file is included from src/).
set(TRELLIS_HAVE_CUDA ${TRELLIS_HAVE_CUDA} CACHE INTERNAL "CUDA support is built in")
set(TRELLIS_CUDA_KEEP_DIR "${TRELLIS_CUDA_KEEP_DIR}" CACHE INTERNAL "nvcc's intermediates of the embedded kernels")
target_link_libraries(trellis_cuda PUBLIC trellis_core Threads::Threads ${CMAKE_DL_LIBS})
