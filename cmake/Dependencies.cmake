# Third-party dependencies, all from Debian packages (see README "Set-up").
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBUNWIND REQUIRED IMPORTED_TARGET libunwind)

# spdlog and fmt are used header-only: libnantrace.so is preloaded into every process a
# training run starts (shells, ffmpeg, ...), so it should pull in no extra shared objects.
add_library(nantrace_logging INTERFACE)
target_compile_definitions(nantrace_logging INTERFACE SPDLOG_FMT_EXTERNAL_HO)
target_link_libraries(nantrace_logging INTERFACE fmt::fmt-header-only Threads::Threads)

if(NANTRACE_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# CUDA: only headers are needed (cupti.h, cuda.h); libcuda and libcupti are dlopen'ed at
# run time, never linked. Missing toolkit -> the adapter is left out with a clear message.
set(NANTRACE_HAVE_CUDA OFF)
if(NANTRACE_WITH_CUDA)
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND)
    find_path(NANTRACE_CUPTI_INCLUDE_DIR cupti.h
      HINTS ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}/extras/CUPTI/include
            ${CUDAToolkit_TARGET_DIR}/extras/CUPTI/include)
    if(NANTRACE_CUPTI_INCLUDE_DIR)
      set(NANTRACE_HAVE_CUDA ON)
      message(STATUS "nantrace: CUDA ${CUDAToolkit_VERSION} found, CUPTI headers in ${NANTRACE_CUPTI_INCLUDE_DIR}: building the GPU adapter")
    else()
      message(STATUS "nantrace: CUDA toolkit found but cupti.h is missing: building without the GPU adapter (CPU checks only)")
    endif()
  else()
    message(STATUS "nantrace: no CUDA toolkit found: building without the GPU adapter (CPU checks only)")
  endif()
else()
  message(STATUS "nantrace: NANTRACE_WITH_CUDA=OFF: building without the GPU adapter")
endif()
