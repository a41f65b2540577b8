/* _nantrace_fast: the hooks' hot path as a CPython extension (issue 17).
 *
 * The torch hooks call the C ABI (include/nantrace/nantrace.h) a few hundred times per training
 * step. Through ctypes, each check costs its Python-side marshalling: a dozen attribute reads
 * and struct field writes, about 2 us. Here the same reads happen in C, and the ABI is called
 * through pointers taken from the runtime library the binding already loaded.
 *
 * Plain C API, limited to the stable ABI of Python 3.10 (one build serves every later Python),
 * and no torch headers: a tensor is read through its Python attributes (dtype, layout, is_cpu,
 * shape, stride(), data_ptr()), so no torch version is tied in. What is not a plain strided CPU
 * tensor of a checked dtype is answered "not mine" (FALLBACK) and the binding's Python path takes
 * it (device tensors, subclasses): one implementation of those, the Python one.
 *
 * Never raises into the hooks for a tensor it cannot read: it answers FALLBACK. */
#define Py_LIMITED_API 0x030A0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "module_hooks.h"
#include "nantrace/nantrace.h"

#define FALLBACK (-2) /* not a tensor this path reads: the caller uses the Python path */

typedef int (*check_fn)(const nt_site*, const nt_tensor*, nt_stats*);
typedef int32_t (*scan_many_fn)(const nt_tensor*, int32_t, int32_t*);
typedef int32_t (*norm_many_fn)(const nt_tensor*, int32_t, double*, int32_t*);
typedef void (*push_fn)(int32_t, const char*, const char*);
typedef void (*pop_fn)(void);

static check_fn g_check;
static scan_many_fn g_scan_many;
static norm_many_fn g_norm_many;
static push_fn g_push;
static pop_fn g_pop;
static PyObject* g_dtype_codes;  /* dict: torch.dtype -> nt_dtype */
static PyObject* g_plain_types;  /* tuple of exact types read here (torch.Tensor, Parameter) */
static PyObject* g_strided;      /* torch.strided */
static PyObject *s_dtype, *s_layout, *s_is_cpu, *s_shape, *s_stride, *s_data_ptr;

#define MAX_MANY 4096

/* The C description of a plain strided CPU tensor of a checked dtype; 0 when it is one, 1 when it
 * is not (not an error: FALLBACK), -1 with a Python error set when reading it failed. */
int fast_describe(PyObject* t, nt_tensor* out, int64_t* sizes, int64_t* strides) {
  PyTypeObject* ty = Py_TYPE(t);
  int plain = 0;
  for (Py_ssize_t i = 0; i < PyTuple_Size(g_plain_types); ++i)
    if ((PyObject*)ty == PyTuple_GetItem(g_plain_types, i)) plain = 1;
  if (!plain) return 1;
  PyObject* v = PyObject_GetAttr(t, s_is_cpu);
  if (!v) return -1;
  const int cpu = v == Py_True;
  Py_DECREF(v);
  if (!cpu) return 1;
  v = PyObject_GetAttr(t, s_layout);
  if (!v) return -1;
  const int strided = v == g_strided;
  Py_DECREF(v);
  if (!strided) return 1;
  v = PyObject_GetAttr(t, s_dtype);
  if (!v) return -1;
  PyObject* code = PyDict_GetItemWithError(g_dtype_codes, v); /* borrowed */
  Py_DECREF(v);
  if (!code) return PyErr_Occurred() ? -1 : 1;
  out->dtype = (int32_t)PyLong_AsLong(code);
  PyObject* shape = PyObject_GetAttr(t, s_shape);
  if (!shape) return -1;
  PyObject* stride = PyObject_CallMethodObjArgs(t, s_stride, NULL);
  if (!stride) {
    Py_DECREF(shape);
    return -1;
  }
  int rc = 0;
  const Py_ssize_t nd = PySequence_Size(shape);
  if (nd < 0 || nd > 16 || PySequence_Size(stride) != nd) {
    rc = nd < 0 ? -1 : 1;
  } else {
    int64_t numel = 1;
    for (Py_ssize_t i = 0; i < nd && rc == 0; ++i) {
      PyObject* a = PySequence_GetItem(shape, i);
      PyObject* b = a ? PySequence_GetItem(stride, i) : NULL;
      if (!a || !b) {
        rc = -1;
      } else {
        sizes[i] = PyLong_AsLongLong(a);
        strides[i] = PyLong_AsLongLong(b);
        if (PyErr_Occurred()) rc = -1;
        numel *= sizes[i];
      }
      Py_XDECREF(a);
      Py_XDECREF(b);
    }
    if (rc == 0 && numel <= 0) rc = 1; /* empty: nothing to check (the Python path skips it too) */
    out->ndim = (int32_t)nd;
  }
  Py_DECREF(shape);
  Py_DECREF(stride);
  if (rc != 0) return rc;
  v = PyObject_CallMethodObjArgs(t, s_data_ptr, NULL);
  if (!v) return -1;
  out->data = PyLong_AsVoidPtr(v);
  Py_DECREF(v);
  if (PyErr_Occurred()) return -1;
  out->sizes = sizes;
  out->strides = strides;
  out->device_type = NT_DEVICE_CPU;
  out->device_index = 0;
  out->stream = 0;
  return 0;
}

static const char* bytes_or_null(PyObject* o, int* ok) {
  if (o == Py_None) return NULL;
  if (!PyBytes_Check(o)) {
    *ok = 0;
    return NULL;
  }
  return PyBytes_AsString(o);
}

/* check(phase, role, path, mtype, op, name, tensor) -> NT_* result, or FALLBACK.
 * Strings are bytes or None, as the binding passes them. */
static PyObject* fast_check(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  (void)self;
  if (nargs != 7) {
    PyErr_SetString(PyExc_TypeError, "check(phase, role, path, mtype, op, name, tensor)");
    return NULL;
  }
  if (!g_check) return PyLong_FromLong(FALLBACK);
  nt_site site;
  int ok = 1;
  site.phase = (int32_t)PyLong_AsLong(args[0]);
  site.role = (int32_t)PyLong_AsLong(args[1]);
  if (PyErr_Occurred()) return NULL;
  site.module_path = bytes_or_null(args[2], &ok);
  site.module_type = bytes_or_null(args[3], &ok);
  site.op = bytes_or_null(args[4], &ok);
  site.tensor_name = bytes_or_null(args[5], &ok);
  if (!ok) return PyLong_FromLong(FALLBACK);
  nt_tensor t;
  int64_t sizes[16], strides[16];
  const int d = fast_describe(args[6], &t, sizes, strides);
  if (d < 0) {
    PyErr_Clear(); /* a tensor we cannot read: the Python path decides */
    return PyLong_FromLong(FALLBACK);
  }
  if (d > 0) return PyLong_FromLong(FALLBACK);
  return PyLong_FromLong(g_check(&site, &t, NULL));
}

/* scan_many(tensors) -> (number holding NaN/Inf, index of the first) or None when one of them
 * is not a plain CPU tensor (then nothing is claimed). norm_many(tensors) -> the same with the
 * total sum of squares as a third item (NaN unless all are finite). */
static PyObject* many(PyObject* seq, int with_norm) {
  if (with_norm ? !g_norm_many : !g_scan_many) Py_RETURN_NONE;
  const Py_ssize_t n = PySequence_Size(seq);
  if (n < 0) return NULL;
  if (n > MAX_MANY) Py_RETURN_NONE;
  nt_tensor* ts = PyMem_Malloc(sizeof(nt_tensor) * (size_t)(n ? n : 1));
  int64_t* dims = PyMem_Malloc(sizeof(int64_t) * 32 * (size_t)(n ? n : 1));
  if (!ts || !dims) {
    PyMem_Free(ts);
    PyMem_Free(dims);
    return PyErr_NoMemory();
  }
  PyObject* result = NULL;
  Py_ssize_t kept = 0;
  int fallback = 0;
  for (Py_ssize_t i = 0; i < n && !fallback; ++i) {
    PyObject* t = PySequence_GetItem(seq, i);
    if (!t) goto done;
    const int d = fast_describe(t, &ts[kept], dims + 32 * kept, dims + 32 * kept + 16);
    Py_DECREF(t);
    if (d < 0) {
      PyErr_Clear();
      fallback = 1;
    } else if (d > 0) {
      fallback = 1;
    } else {
      ++kept;
    }
  }
  if (fallback) {
    Py_INCREF(Py_None);
    result = Py_None;
  } else {
    int32_t first = -1;
    double ss = 0;
    const int32_t bad = with_norm ? g_norm_many(ts, (int32_t)kept, &ss, &first) : g_scan_many(ts, (int32_t)kept, &first);
    if (bad < 0) {
      Py_INCREF(Py_None);
      result = Py_None;
    } else if (with_norm) {
      result = Py_BuildValue("(iid)", (int)bad, (int)first, ss);
    } else {
      result = Py_BuildValue("(ii)", (int)bad, (int)first);
    }
  }
done:
  PyMem_Free(ts);
  PyMem_Free(dims);
  return result;
}

int module_hooks_check(const nt_site* site, const nt_tensor* tensor) {
  return g_check ? g_check(site, tensor, NULL) : -1;
}

int module_hooks_push(PyObject* path, PyObject* mtype) {
  if (!g_push || !PyBytes_Check(path) || !PyBytes_Check(mtype)) return 0;
  g_push(NT_SCOPE_MODULE, PyBytes_AsString(path), PyBytes_AsString(mtype));
  return 1;
}

void module_hooks_pop(void) {
  if (g_pop) g_pop();
}

static PyObject* fast_scan_many(PyObject* self, PyObject* seq) {
  (void)self;
  return many(seq, 0);
}

static PyObject* fast_norm_many(PyObject* self, PyObject* seq) {
  (void)self;
  return many(seq, 1);
}

/* ---- the update ratio's samples (nantrace_torch/_update_ratio.py) ----
 * The sample is a list of contiguous views of an optimizer's parameters, one dtype. Before the
 * step their bytes are copied (copy_samples); after it, per group of views, the norm of the
 * change and of the weights before are summed in double (sample_ratios). No torch op runs:
 * a dozen torch calls per step cost more than the arithmetic. */

static double element(const char* p, int32_t dtype, Py_ssize_t i) {
  switch (dtype) {
    case NT_DTYPE_F32: {
      float f;
      memcpy(&f, p + 4 * i, 4);
      return f;
    }
    case NT_DTYPE_F64: {
      double d;
      memcpy(&d, p + 8 * i, 8);
      return d;
    }
    case NT_DTYPE_BF16: {
      uint16_t h;
      memcpy(&h, p + 2 * i, 2);
      const uint32_t b = (uint32_t)h << 16;
      float f;
      memcpy(&f, &b, 4);
      return f;
    }
    case NT_DTYPE_F16: {
      uint16_t h;
      memcpy(&h, p + 2 * i, 2);
      const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
      if (exp == 0) {
        const double v = (double)man * (1.0 / 16777216.0);
        return sign ? -v : v;
      }
      const uint32_t b = exp == 0x1f ? (sign | 0x7f800000u | (man << 13)) : (sign | ((exp + 112u) << 23) | (man << 13));
      float f;
      memcpy(&f, &b, 4);
      return f;
    }
  }
  return 0;
}

static Py_ssize_t dtype_size(int32_t dtype) {
  return dtype == NT_DTYPE_F64 ? 8 : dtype == NT_DTYPE_F32 ? 4 : 2;
}

/* The views' data pointers, read now (a parameter's storage can be replaced between steps). */
static int view_pointers(PyObject* views, Py_ssize_t n, char** out) {
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* v = PySequence_GetItem(views, i);
    PyObject* p = v ? PyObject_CallMethodObjArgs(v, s_data_ptr, NULL) : NULL;
    Py_XDECREF(v);
    if (!p) return -1;
    out[i] = (char*)PyLong_AsVoidPtr(p);
    Py_DECREF(p);
    if (PyErr_Occurred()) return -1;
  }
  return 0;
}

/* copy_samples(views, counts, dtype) -> bytes: the views' elements, concatenated. */
static PyObject* fast_copy_samples(PyObject* self, PyObject* args) {
  (void)self;
  PyObject *views, *counts;
  int dtype;
  if (!PyArg_ParseTuple(args, "OOi", &views, &counts, &dtype)) return NULL;
  const Py_ssize_t n = PySequence_Size(views);
  if (n < 0 || PySequence_Size(counts) != n) return NULL;
  char** ptrs = PyMem_Malloc(sizeof(char*) * (size_t)(n ? n : 1));
  Py_ssize_t* cnt = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(n ? n : 1));
  PyObject* out = NULL;
  if (!ptrs || !cnt) {
    PyErr_NoMemory();
    goto done;
  }
  Py_ssize_t total = 0;
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* c = PySequence_GetItem(counts, i);
    cnt[i] = c ? PyLong_AsSsize_t(c) : -1;
    Py_XDECREF(c);
    if (cnt[i] < 0) goto done;
    total += cnt[i];
  }
  if (view_pointers(views, n, ptrs) != 0) goto done;
  const Py_ssize_t es = dtype_size(dtype);
  out = PyBytes_FromStringAndSize(NULL, total * es);
  if (!out) goto done;
  char* dst = PyBytes_AsString(out);
  for (Py_ssize_t i = 0; i < n; ++i) {
    memcpy(dst, ptrs[i], (size_t)(cnt[i] * es));
    dst += cnt[i] * es;
  }
done:
  PyMem_Free(ptrs);
  PyMem_Free(cnt);
  return out;
}

/* sample_ratios(views, counts, dtype, before, group_ends) -> [||after - before|| / ||before||]
 * per group; group_ends: the index of the view after each group's last. */
static PyObject* fast_sample_ratios(PyObject* self, PyObject* args) {
  (void)self;
  PyObject *views, *counts, *before, *ends;
  int dtype;
  if (!PyArg_ParseTuple(args, "OOiSO", &views, &counts, &dtype, &before, &ends)) return NULL;
  const Py_ssize_t n = PySequence_Size(views), groups = PySequence_Size(ends);
  if (n < 0 || groups < 0 || PySequence_Size(counts) != n) return NULL;
  const Py_ssize_t es = dtype_size(dtype);
  char** ptrs = PyMem_Malloc(sizeof(char*) * (size_t)(n ? n : 1));
  PyObject* result = NULL;
  if (!ptrs) return PyErr_NoMemory();
  if (view_pointers(views, n, ptrs) != 0) goto done;
  result = PyList_New(groups);
  if (!result) goto done;
  const char* b = PyBytes_AsString(before);
  const Py_ssize_t blen = PyBytes_Size(before);
  Py_ssize_t view = 0, offset = 0;
  for (Py_ssize_t g = 0; g < groups; ++g) {
    PyObject* e = PySequence_GetItem(ends, g);
    const Py_ssize_t end = e ? PyLong_AsSsize_t(e) : -1;
    Py_XDECREF(e);
    if (end < view || end > n) {
      if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "sample_ratios: bad group ends");
      Py_CLEAR(result);
      goto done;
    }
    double d2 = 0, w2 = 0;
    for (; view < end; ++view) {
      PyObject* c = PySequence_GetItem(counts, view);
      const Py_ssize_t k = c ? PyLong_AsSsize_t(c) : -1;
      Py_XDECREF(c);
      if (k < 0 || (offset + k) * es > blen) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "sample_ratios: the snapshot is too short");
        Py_CLEAR(result);
        goto done;
      }
      const char* bv = b + offset * es;
      for (Py_ssize_t i = 0; i < k; ++i) {
        const double w = element(bv, dtype, i), d = element(ptrs[view], dtype, i) - w;
        d2 += d * d;
        w2 += w * w;
      }
      offset += k;
    }
    PyList_SetItem(result, g, PyFloat_FromDouble(sqrt(d2) / sqrt(w2)));
  }
done:
  PyMem_Free(ptrs);
  return result;
}

/* push(kind, name, type) / pop(): the module scopes, without ctypes' argument conversion. */
static PyObject* fast_push(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  (void)self;
  if (nargs != 3) {
    PyErr_SetString(PyExc_TypeError, "push(kind, name, type)");
    return NULL;
  }
  int ok = 1;
  const long kind = PyLong_AsLong(args[0]);
  if (PyErr_Occurred()) return NULL;
  const char* name = bytes_or_null(args[1], &ok);
  const char* type = bytes_or_null(args[2], &ok);
  if (ok && g_push) g_push((int32_t)kind, name, type);
  Py_RETURN_NONE;
}

static PyObject* fast_pop(PyObject* self, PyObject* unused) {
  (void)self;
  (void)unused;
  if (g_pop) g_pop();
  Py_RETURN_NONE;
}

/* init(library_path, dtype_codes, plain_types, strided) -> True when the runtime's ABI was
 * found in the already loaded library (RTLD_NOLOAD: nothing new is loaded). */
static PyObject* fast_init(PyObject* self, PyObject* args) {
  (void)self;
  const char* path;
  PyObject *codes, *types, *strided;
  if (!PyArg_ParseTuple(args, "sOOO", &path, &codes, &types, &strided)) return NULL;
  if (!PyDict_Check(codes) || !PyTuple_Check(types)) {
    PyErr_SetString(PyExc_TypeError, "init(path, dict, tuple, layout)");
    return NULL;
  }
  void* h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
  if (!h) Py_RETURN_FALSE;
  check_fn c = (check_fn)dlsym(h, "nantrace_check");
  scan_many_fn s = (scan_many_fn)dlsym(h, "nantrace_scan_many");
  norm_many_fn nm = (norm_many_fn)dlsym(h, "nantrace_norm_many");
  push_fn pu = (push_fn)dlsym(h, "nantrace_scope_push");
  pop_fn po = (pop_fn)dlsym(h, "nantrace_scope_pop");
  dlclose(h); /* the binding's own handle keeps the library mapped */
  if (!c || !pu || !po) Py_RETURN_FALSE;
  Py_XDECREF(g_dtype_codes);
  Py_XDECREF(g_plain_types);
  Py_XDECREF(g_strided);
  Py_INCREF(codes);
  Py_INCREF(types);
  Py_INCREF(strided);
  g_dtype_codes = codes;
  g_plain_types = types;
  g_strided = strided;
  g_check = c;
  g_scan_many = s;
  g_norm_many = nm;
  g_push = pu;
  g_pop = po;
  Py_RETURN_TRUE;
}

static PyMethodDef methods[] = {
    {"init", (PyCFunction)fast_init, METH_VARARGS, "init(library_path, dtype_codes, plain_types, strided) -> bool"},
    {"check", (PyCFunction)(void (*)(void))fast_check, METH_FASTCALL,
     "check(phase, role, path, mtype, op, name, tensor) -> int (-2: take the Python path)"},
    {"scan_many", (PyCFunction)fast_scan_many, METH_O,
     "scan_many(tensors) -> (count holding NaN/Inf, first index) or None"},
    {"norm_many", (PyCFunction)fast_norm_many, METH_O,
     "norm_many(tensors) -> (count holding NaN/Inf, first index, sum of squares) or None"},
    {"copy_samples", (PyCFunction)fast_copy_samples, METH_VARARGS, "copy_samples(views, counts, dtype) -> bytes"},
    {"sample_ratios", (PyCFunction)fast_sample_ratios, METH_VARARGS,
     "sample_ratios(views, counts, dtype, before, group_ends) -> [ratio per group]"},
    {"push", (PyCFunction)(void (*)(void))fast_push, METH_FASTCALL, "push(kind, name, type)"},
    {"pop", (PyCFunction)fast_pop, METH_NOARGS, "pop()"},
    {"configure_hooks", (PyCFunction)module_hooks_configure, METH_VARARGS,
     "configure_hooks(tls, runtime, investigation, capture_armed, transparent_types, grad_checks, make_grad_check, "
     "hook_gradient, on_nonfinite, grad_enabled, plain_types, output_name, tuple_names, ordered_dict) -> True"},
    {"configure_grad_checks", (PyCFunction)module_hooks_configure_grad, METH_VARARGS,
     "configure_grad_checks(guard, api_check, on_nonfinite_grad, disable) -> True"},
    {"pre", (PyCFunction)(void (*)(void))module_hooks_pre, METH_FASTCALL,
     "pre(module, args) -> True when the submodule's frame was pushed here (module_hooks.c)"},
    {"post", (PyCFunction)(void (*)(void))module_hooks_post, METH_FASTCALL,
     "post(module, args, kwargs, output) -> True when the frame was closed here (module_hooks.c)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_nantrace_fast",
                                    "nantrace's hot path: checks without ctypes (see nantrace_fast.c)", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__nantrace_fast(void) {
  s_dtype = PyUnicode_InternFromString("dtype");
  s_layout = PyUnicode_InternFromString("layout");
  s_is_cpu = PyUnicode_InternFromString("is_cpu");
  s_shape = PyUnicode_InternFromString("shape");
  s_stride = PyUnicode_InternFromString("stride");
  s_data_ptr = PyUnicode_InternFromString("data_ptr");
  if (!s_dtype || !s_layout || !s_is_cpu || !s_shape || !s_stride || !s_data_ptr) return NULL;
  PyObject* m = PyModule_Create(&module);
  if (!m) return NULL;
  PyObject* frame_type = module_hooks_frame_type();
  if (!frame_type || PyModule_AddObject(m, "Frame", frame_type) != 0) {
    Py_XDECREF(frame_type);
    Py_DECREF(m);
    return NULL;
  }
  PyObject* gc_type = module_hooks_gradcheck_type();
  if (!gc_type || PyModule_AddObject(m, "GradCheck", gc_type) != 0) {
    Py_XDECREF(gc_type);
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
