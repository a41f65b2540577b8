// The C ABI (include/nantrace/nantrace.h). Every function catches everything: nothing
// nantrace does may throw into the host. A failure is logged once and the call degrades.
#include <cmath>
#include <exception>
#include <string>

#include "nantrace/nantrace.h"
#include "runtime/log.h"
#include "runtime/runtime.h"
#include "runtime/scan_dispatch.h"

namespace {

template <class F, class R>
R guarded(const char* what, R fallback, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    nantrace::log::warn_once(std::string("abi-") + what, std::string(what) + " failed: " + e.what() +
                                                              " (nantrace keeps going without it)");
  } catch (...) {
    nantrace::log::warn_once(std::string("abi-") + what, std::string(what) + " failed (nantrace keeps going)");
  }
  return fallback;
}

std::string str(const char* s) { return s ? std::string(s) : std::string(); }

nantrace::Runtime& rt() { return nantrace::Runtime::instance(); }

}  // namespace

extern "C" {

NT_API int nantrace_abi_version(void) { return NANTRACE_ABI_VERSION; }

NT_API int nantrace_start(const char* frontend) {
  return guarded("start", 0, [&] { return rt().start(frontend) ? 1 : 0; });
}

NT_API void nantrace_stop(void) {
  guarded("stop", 0, [&] { return rt().stop(), 0; });
}

NT_API int nantrace_active(void) { return rt().active() ? 1 : 0; }

NT_API int64_t nantrace_config_int(const char* key) {
  return guarded("config", int64_t(-1), [&] { return rt().config_int(str(key)); });
}

NT_API const char* nantrace_run_dir(void) { return rt().run_dir(); }
NT_API const char* nantrace_run_file_name(const char* stem, const char* ext) {
  return stem && ext ? rt().frontend_file_name(stem, ext) : nullptr;
}

NT_API void nantrace_set_rank(int32_t rank, int32_t world_size) {
  guarded("set_rank", 0, [&] { return rt().set_rank(rank, world_size), 0; });
}

NT_API void nantrace_set_progress_bar(int32_t active) { nantrace::log::set_progress_bar(active != 0); }
NT_API void nantrace_set_meta(const char* key, const char* value) {
  if (!key || !value) return;
  guarded("set_meta", 0, [&] { return rt().set_meta(key, value), 0; });
}

NT_API void nantrace_step_begin(int64_t step) {
  guarded("step_begin", 0, [&] { return rt().step_begin(step), 0; });
}

NT_API void nantrace_scope_push(int32_t kind, const char* name, const char* type) {
  guarded("scope_push", 0, [&] { return rt().scope_push(kind, name, type), 0; });
}

NT_API void nantrace_scope_pop(void) {
  guarded("scope_pop", 0, [&] { return rt().scope_pop(), 0; });
}

NT_API int nantrace_check(const nt_site* site, const nt_tensor* tensor, nt_stats* out) {
  if (!site || !tensor) return NT_ERROR;
  return guarded("check", NT_ERROR, [&] { return rt().check(*site, *tensor, out); });
}

NT_API int32_t nantrace_scan_many(const nt_tensor* tensors, int32_t n, int32_t* first_bad) {
  if (first_bad) *first_bad = -1;
  if (n < 0 || (n > 0 && !tensors)) return -1;
  return guarded("scan_many", int32_t(-1), [&] { return nantrace::scan_many_on_cpu(tensors, n, first_bad); });
}

NT_API int32_t nantrace_norm_many(const nt_tensor* tensors, int32_t n, double* sum_squares, int32_t* first_bad) {
  if (first_bad) *first_bad = -1;
  if (sum_squares) *sum_squares = NAN;
  if (n < 0 || (n > 0 && !tensors)) return -1;
  return guarded("norm_many", int32_t(-1),
                 [&] { return nantrace::norm_many_on_cpu(tensors, n, sum_squares, first_bad); });
}

NT_API void nantrace_scalar(const char* name, double value) {
  if (!name) return;
  guarded("scalar", 0, [&] { return rt().scalar(name, value), 0; });
}

NT_API void nantrace_scalar_at(const char* name, int64_t step, double value) {
  if (!name) return;
  guarded("scalar", 0, [&] { return rt().scalar(name, value, step), 0; });
}

NT_API void nantrace_event(int32_t kind, const char* name, const char* detail_json) {
  guarded("event", 0, [&] { return rt().event(kind, str(name), str(detail_json)), 0; });
}

NT_API int64_t nantrace_stat(const char* key) {
  if (!key) return -1;
  return guarded("stat", int64_t(-1), [&] { return rt().stat(key); });
}

NT_API int nantrace_origin_found(void) {
  return guarded("origin_found", 0, [&] { return rt().origin_found() ? 1 : 0; });
}

NT_API const char* nantrace_finding_json(void) {
  return guarded("finding_json", static_cast<const char*>("{}"), [&] { return rt().finding_json(); });
}

}  // extern "C"
