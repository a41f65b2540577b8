# Install rules: one layout for `pip install` (scikit-build-core) and `cmake --install`.
#
# The package directory holds the command-line package (`nantrace`), libnantrace.so (the
# LD_PRELOAD shim), libnantrace_runtime.so, nantrace-merge, _version.py and python/ (the
# bootstrap and the torch hooks: the shim finds python/ next to itself). It is
#   <site-packages>/nantrace/        in a wheel (the `nantrace` console script is pip's), and
#   <prefix>/lib/nantrace/           for `cmake --install --prefix P`, which also installs
#   <prefix>/bin/nantrace, <prefix>/include/nantrace/nantrace.h and the CMake package
#   <prefix>/lib/cmake/nantrace/ (find_package(nantrace) -> nantrace::runtime, the C ABI).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

if(SKBUILD)
  set(NANTRACE_PACKAGE_DIR nantrace)
else()
  set(NANTRACE_PACKAGE_DIR ${CMAKE_INSTALL_LIBDIR}/nantrace)
endif()

configure_file(${PROJECT_SOURCE_DIR}/cmake/_version.py.in ${PROJECT_BINARY_DIR}/_version.py @ONLY)

# Installed libraries find nothing of ours through RPATH: the shim dlopens nothing, the
# runtime is loaded by path; third-party libraries (libunwind) are the system's, or bundled
# by auditwheel for a wheel.
install(TARGETS nantrace nantrace_runtime LIBRARY DESTINATION ${NANTRACE_PACKAGE_DIR})
install(TARGETS nantrace-merge RUNTIME DESTINATION ${NANTRACE_PACKAGE_DIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/injector/python/ DESTINATION ${NANTRACE_PACKAGE_DIR}/python
        PATTERN __pycache__ EXCLUDE)
if(TARGET nantrace_fast)
  install(TARGETS nantrace_fast LIBRARY DESTINATION ${NANTRACE_PACKAGE_DIR}/python/nantrace_torch)
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/injector/nantrace/ DESTINATION ${NANTRACE_PACKAGE_DIR}
        PATTERN __pycache__ EXCLUDE)
install(FILES ${PROJECT_BINARY_DIR}/_version.py DESTINATION ${NANTRACE_PACKAGE_DIR})

if(NOT SKBUILD)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/nantrace_command.py.in ${PROJECT_BINARY_DIR}/nantrace_command @ONLY)
  install(PROGRAMS ${PROJECT_BINARY_DIR}/nantrace_command DESTINATION ${CMAKE_INSTALL_BINDIR} RENAME nantrace)
  install(FILES ${PROJECT_SOURCE_DIR}/include/nantrace/nantrace.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/nantrace)
  set(NANTRACE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/nantrace)
  configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/nantraceConfig.cmake.in
    ${PROJECT_BINARY_DIR}/nantraceConfig.cmake INSTALL_DESTINATION ${NANTRACE_CMAKE_DIR}
    PATH_VARS NANTRACE_PACKAGE_DIR CMAKE_INSTALL_INCLUDEDIR)
  write_basic_package_version_file(${PROJECT_BINARY_DIR}/nantraceConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
  install(FILES ${PROJECT_BINARY_DIR}/nantraceConfig.cmake ${PROJECT_BINARY_DIR}/nantraceConfigVersion.cmake
          DESTINATION ${NANTRACE_CMAKE_DIR})
endif()
