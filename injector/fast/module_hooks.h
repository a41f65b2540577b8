/* The module hooks' common case in C (module_hooks.c), and what it uses of the extension's
 * core (nantrace_fast.c): reading a tensor, calling the library. */
#pragma once

#include <Python.h>

#include <stdint.h>

#include "nantrace/nantrace.h"

/* nantrace_fast.c */
int fast_describe(PyObject* t, nt_tensor* out, int64_t* sizes, int64_t* strides);
int module_hooks_check(const nt_site* site, const nt_tensor* tensor); /* -1: no library */
int module_hooks_push(PyObject* path, PyObject* mtype);               /* 1 when pushed */
void module_hooks_pop(void);

/* module_hooks.c */
PyObject* module_hooks_frame_type(void);
PyObject* module_hooks_configure(PyObject* self, PyObject* args);
PyObject* module_hooks_pre(PyObject* self, PyObject* const* args, Py_ssize_t nargs);
PyObject* module_hooks_post(PyObject* self, PyObject* const* args, Py_ssize_t nargs);
PyObject* module_hooks_gradcheck_type(void);
PyObject* module_hooks_configure_grad(PyObject* self, PyObject* args);
