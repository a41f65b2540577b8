# Third-party dependencies, all from Debian packages (see README "Set-up").
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
# libunwind: through pkg-config where there is one; else by its header and library, which
# also finds a copy unpacked under CMAKE_PREFIX_PATH (tools/gpu_deps.sh, for machines that
# cannot install Debian packages).
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(LIBUNWIND QUIET IMPORTED_TARGET libunwind)
endif()
add_library(nantrace_libunwind INTERFACE)
if(TARGET PkgConfig::LIBUNWIND)
  target_link_libraries(nantrace_libunwind INTERFACE PkgConfig::LIBUNWIND)
else()
  find_path(NANTRACE_LIBUNWIND_INCLUDE_DIR libunwind.h)
  find_library(NANTRACE_LIBUNWIND_LIBRARY unwind)
  if(NOT NANTRACE_LIBUNWIND_INCLUDE_DIR OR NOT NANTRACE_LIBUNWIND_LIBRARY)
    message(FATAL_ERROR "nantrace: libunwind not found (install libunwind-dev, or unpack it under CMAKE_PREFIX_PATH)")
  endif()
  target_include_directories(nantrace_libunwind INTERFACE ${NANTRACE_LIBUNWIND_INCLUDE_DIR})
  target_link_libraries(nantrace_libunwind INTERFACE ${NANTRACE_LIBUNWIND_LIBRARY})
  message(STATUS "nantrace: libunwind ${NANTRACE_LIBUNWIND_LIBRARY}")
endif()

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
