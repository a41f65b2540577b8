#include "cuda/library_loader.h"

#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <cstring>

namespace nantrace::cuda {
namespace {

int collect_torch_dirs(struct dl_phdr_info* info, size_t, void* data) {
  auto* out = static_cast<std::vector<std::string>*>(data);
  if (!info->dlpi_name || !*info->dlpi_name) return 0;
  const std::string path = info->dlpi_name;
  // .../site-packages/torch/lib/libc10.so, libtorch_cuda.so, libtorch_python.so ...
  const std::string marker = "/torch/lib/";
  const size_t at = path.rfind(marker);
  if (at == std::string::npos) return 0;
  const std::string file = path.substr(at + marker.size());
  if (file.rfind("libtorch", 0) != 0 && file.rfind("libc10", 0) != 0) return 0;
  const std::string site = path.substr(0, at);
  if (std::find(out->begin(), out->end(), site) == out->end()) out->push_back(site);
  return 0;
}

void* try_open(const std::string& path, int flags, std::string* tried) {
  dlerror();
  void* h = dlopen(path.c_str(), flags);
  if (!h && tried) {
    const char* e = dlerror();
    *tried += "\n  " + path + ": " + (e ? e : "not found");
  }
  return h;
}

}  // namespace

std::vector<std::string> torch_site_packages() {
  std::vector<std::string> dirs;
  dl_iterate_phdr(collect_torch_dirs, &dirs);
  return dirs;
}

LoadedLibrary load_library(const LibrarySearch& search, std::string* error) {
  LoadedLibrary lib;
  std::string tried;
  // 1. Reuse a copy the process already has (PyTorch's wheel loads libcupti with libtorch_cuda).
  for (const auto& so : search.sonames) {
    dlerror();
    if (void* h = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD)) {
      lib.handle = h;
      lib.path = so;
      lib.how = "already loaded";
      return lib;
    }
  }
  tried += "\n  (none of the sonames already loaded)";
  // 2. Next to the torch wheel, so the version matches the CUDA torch was built for.
  for (const auto& site : torch_site_packages()) {
    for (const auto& rel : search.wheel_paths) {
      const std::string path = site + "/" + rel;
      if (void* h = try_open(path, RTLD_NOW | RTLD_LOCAL, &tried)) {
        lib.handle = h;
        lib.path = path;
        lib.how = "next to torch";
        return lib;
      }
    }
  }
  // 3. Explicit paths (tests, overrides), then whatever the dynamic loader finds.
  for (const auto& path : search.extra_paths) {
    if (void* h = try_open(path, RTLD_NOW | RTLD_LOCAL, &tried)) {
      lib.handle = h;
      lib.path = path;
      lib.how = "explicit path";
      return lib;
    }
  }
  for (const auto& so : search.sonames) {
    if (void* h = try_open(so, RTLD_NOW | RTLD_LOCAL, &tried)) {
      lib.handle = h;
      lib.path = so;
      lib.how = "dynamic loader";
      return lib;
    }
  }
  if (error) *error = "tried:" + tried;
  return lib;
}

LibrarySearch driver_search() {
  LibrarySearch s;
  s.sonames = {"libcuda.so.1"};
  return s;
}

LibrarySearch cupti_search() {
  LibrarySearch s;
  s.sonames = {"libcupti.so.13", "libcupti.so.12", "libcupti.so"};
  s.wheel_paths = {"nvidia/cu13/lib/libcupti.so.13", "nvidia/cuda_cupti/lib/libcupti.so.13",
                   "nvidia/cuda_cupti/lib/libcupti.so.12"};
  return s;
}

LibrarySearch nvrtc_search() {
  LibrarySearch s;
  s.sonames = {"libnvrtc.so.13", "libnvrtc.so.12"};
  s.wheel_paths = {"nvidia/cu13/lib/libnvrtc.so.13", "nvidia/cuda_nvrtc/lib/libnvrtc.so.13",
                   "nvidia/cuda_nvrtc/lib/libnvrtc.so.12"};
  return s;
}

}  // namespace nantrace::cuda
