/*
 * libnantrace.so — the object users put in LD_PRELOAD.
 *
 * LD_PRELOAD maps it into every process a training run starts: shells, ls, ffmpeg,
 * nvidia-smi. So it is deliberately tiny plain C with no dependency beyond libc: no C++
 * runtime, no static initialisers. Outside a Python interpreter its constructor returns after
 * one dlsym. In Python it only sets environment variables: the bootstrap folder on PYTHONPATH,
 * NANTRACE_RUNTIME_LIB (the real library, libnantrace_runtime.so next to this one, loaded by
 * the Python hooks when torch is imported) and CUDA_INJECTION64_PATH (the same runtime).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NT_SHIM_API __attribute__((visibility("default")))

static int is_python_interpreter(void) {
  /* Both a shared libpython and a statically linked interpreter export these symbols. */
  return dlsym(RTLD_DEFAULT, "Py_BytesMain") != NULL || dlsym(RTLD_DEFAULT, "Py_Main") != NULL;
}

static int env_true(const char* name) {
  const char* v = getenv(name);
  return v && (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
               strcasecmp(v, "on") == 0);
}

/* A marker only this object defines, so dladdr finds our own path. */
NT_SHIM_API int nantrace_preload_shim_version(void) { return 1; }

static void prepend_path_var(const char* var, const char* dir) {
  const char* old = getenv(var);
  const size_t n = strlen(dir);
  if (!old || !*old) {
    setenv(var, dir, 1);
    return;
  }
  /* Already first (a child of an injected process): leave it. */
  if (strncmp(old, dir, n) == 0 && (old[n] == '\0' || old[n] == ':')) return;
  char* joined = malloc(n + 1 + strlen(old) + 1);
  if (!joined) return;
  strcpy(joined, dir);
  joined[n] = ':';
  strcpy(joined + n + 1, old);
  setenv(var, joined, 1);
  free(joined);
}

__attribute__((constructor)) static void nantrace_preload_init(void) {
  if (!is_python_interpreter() || env_true("NANTRACE_DISABLE")) return;
  Dl_info info;
  if (dladdr((void*)&nantrace_preload_shim_version, &info) == 0 || !info.dli_fname) return;
  char self[PATH_MAX];
  if (!realpath(info.dli_fname, self)) return;
  char* slash = strrchr(self, '/');
  if (!slash) return;
  *slash = '\0'; /* self is now the library's folder */
  char runtime[PATH_MAX], python_dir[PATH_MAX], shim[PATH_MAX];
  if (strlen(self) + 32 >= sizeof runtime) return;
  strcpy(runtime, self);
  strcat(runtime, "/libnantrace_runtime.so");
  strcpy(python_dir, self);
  strcat(python_dir, "/python");
  strcpy(shim, self);
  strcat(shim, "/libnantrace.so");
  setenv("NANTRACE_LIB", shim, 1);
  setenv("NANTRACE_RUNTIME_LIB", runtime, 1);
  prepend_path_var("PYTHONPATH", python_dir);
  const char* cuda = getenv("NANTRACE_CUDA");
  if (!getenv("CUDA_INJECTION64_PATH") && !(cuda && strcmp(cuda, "off") == 0))
    setenv("CUDA_INJECTION64_PATH", runtime, 1);
}
