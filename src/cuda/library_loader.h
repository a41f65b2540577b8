// Finding the CUDA libraries of the process at run time. The training process (PyTorch's
// wheel) usually has libcupti / libnvrtc loaded already, and a second, different copy in the
// same process would fight the first; so we reuse what is loaded, then look next to the
// torch wheel, and only then ask the dynamic loader for the plain soname.
#pragma once

#include <string>
#include <vector>

namespace nantrace::cuda {

struct LibrarySearch {
  std::vector<std::string> sonames;        // "libcupti.so.13", ... tried with RTLD_NOLOAD first
  std::vector<std::string> wheel_paths;    // relative to site-packages: "nvidia/cu13/lib/libcupti.so.13"
  std::vector<std::string> extra_paths;    // absolute paths tried last (tests, overrides)
};

struct LoadedLibrary {
  void* handle = nullptr;
  std::string path;  // what was opened
  std::string how;   // "already loaded", "next to torch", "dynamic loader", "explicit path"
};

// Never throws. On failure handle is null and *error lists what was tried.
LoadedLibrary load_library(const LibrarySearch& search, std::string* error);

// site-packages directories of the loaded torch (found from loaded libtorch/libc10 paths).
std::vector<std::string> torch_site_packages();

// Searches used by the adapter.
LibrarySearch driver_search();
LibrarySearch cupti_search();
LibrarySearch nvrtc_search();

}  // namespace nantrace::cuda
