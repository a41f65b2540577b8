/* The module hooks' common case in C: a submodule's forward entering and leaving inside a
 * running forward (nantrace_torch/_modules.py, _pre_hook and _post_hook, is the one
 * definition of what they do; this file does the same for the common case and says "not
 * mine" for everything else).
 *
 * pre(module, args) -> True when handled: a frame pushed for a submodule whose path the root
 *   already knows; False leaves it to the Python hook (a root forward, a path to refresh,
 *   recording not started, an op-level culprit armed, a type not yet classified).
 * post(module, args, kwargs, output) -> True when handled: the frame popped, its plain CPU
 *   tensor outputs (one, or a tuple of up to 8) checked, their gradients hooked, the scope
 *   closed; False leaves it to the Python hook (a root's frame, an unwind, device tensors,
 *   other containers, a capture armed, op-level mode).
 * A NaN/Inf output calls back into Python (the investigation): rare, and the Python owner of
 * that logic stays the only one.
 *
 * Everything that decides is checked before anything changes, so "False" leaves no half-done
 * work behind. Python errors raised in here propagate to the hook, whose guard switches the
 * module hooks off with one line, as for the Python path. */
#define Py_LIMITED_API 0x030A0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <stddef.h>
#include <stdint.h>

#include "module_hooks.h"
#include "nantrace/nantrace.h"

/* Py_XSETREF is not in the limited API. */
#define SET_OWNED(dst, value)   \
  do {                          \
    PyObject* old_ = (dst);     \
    (dst) = (value);            \
    Py_XDECREF(old_);           \
  } while (0)

/* ---- Frame: one module forward in flight (the Python class's attributes, in C) ---- */

typedef struct {
  PyObject_HEAD
  PyObject *module, *path, *mtype, *root, *info, *seen, *args, *kwargs, *nodes, *opmode;
  char pushed;
  int phase;
} Frame;

static PyTypeObject* g_frame_type;

static int frame_init(PyObject* self, PyObject* args, PyObject* kw) {
  static char* names[] = {"module", "path", "mtype", "root", "info", "seen", "args", "kwargs", "nodes", "phase", NULL};
  Frame* f = (Frame*)self;
  PyObject *module, *path, *mtype, *root, *info, *seen, *fargs, *kwargs = Py_None, *nodes = Py_None;
  int phase = NT_PHASE_FORWARD;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOO|OOi", names, &module, &path, &mtype, &root, &info, &seen,
                                   &fargs, &kwargs, &nodes, &phase))
    return -1;
  PyObject* vals[] = {module, path, mtype, root, info, seen, fargs, kwargs, nodes};
  PyObject** slots[] = {&f->module, &f->path, &f->mtype, &f->root, &f->info, &f->seen, &f->args, &f->kwargs, &f->nodes};
  for (int i = 0; i < 9; ++i) {
    Py_INCREF(vals[i]);
    SET_OWNED(*slots[i], vals[i]);
  }
  Py_INCREF(Py_None);
  SET_OWNED(f->opmode, Py_None);
  f->pushed = 0;
  f->phase = phase;
  return 0;
}

static int frame_traverse(PyObject* self, visitproc visit, void* arg) {
  Frame* f = (Frame*)self;
  Py_VISIT(f->module);
  Py_VISIT(f->path);
  Py_VISIT(f->mtype);
  Py_VISIT(f->root);
  Py_VISIT(f->info);
  Py_VISIT(f->seen);
  Py_VISIT(f->args);
  Py_VISIT(f->kwargs);
  Py_VISIT(f->nodes);
  Py_VISIT(f->opmode);
  Py_VISIT((PyObject*)Py_TYPE(self));
  return 0;
}

static int frame_clear(PyObject* self) {
  Frame* f = (Frame*)self;
  Py_CLEAR(f->module);
  Py_CLEAR(f->path);
  Py_CLEAR(f->mtype);
  Py_CLEAR(f->root);
  Py_CLEAR(f->info);
  Py_CLEAR(f->seen);
  Py_CLEAR(f->args);
  Py_CLEAR(f->kwargs);
  Py_CLEAR(f->nodes);
  Py_CLEAR(f->opmode);
  return 0;
}

static void frame_dealloc(PyObject* self) {
  PyTypeObject* tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  frame_clear(self);
  freefunc free_fn = (freefunc)PyType_GetSlot(tp, Py_tp_free);
  free_fn(self);
  Py_DECREF(tp);
}

static PyMemberDef frame_members[] = {
    {"module", T_OBJECT_EX, offsetof(Frame, module), 0, NULL},
    {"path", T_OBJECT_EX, offsetof(Frame, path), 0, NULL},
    {"mtype", T_OBJECT_EX, offsetof(Frame, mtype), 0, NULL},
    {"root", T_OBJECT_EX, offsetof(Frame, root), 0, NULL},
    {"info", T_OBJECT_EX, offsetof(Frame, info), 0, NULL},
    {"seen", T_OBJECT_EX, offsetof(Frame, seen), 0, NULL},
    {"args", T_OBJECT_EX, offsetof(Frame, args), 0, NULL},
    {"kwargs", T_OBJECT_EX, offsetof(Frame, kwargs), 0, NULL},
    {"nodes", T_OBJECT_EX, offsetof(Frame, nodes), 0, NULL},
    {"opmode", T_OBJECT_EX, offsetof(Frame, opmode), 0, NULL},
    {"pushed", T_BOOL, offsetof(Frame, pushed), 0, NULL},
    {"phase", T_INT, offsetof(Frame, phase), 0, NULL},
    {NULL, 0, 0, 0, NULL}};

static PyType_Slot frame_slots[] = {
    {Py_tp_init, (void*)frame_init},
    {Py_tp_traverse, (void*)frame_traverse},
    {Py_tp_clear, (void*)frame_clear},
    {Py_tp_dealloc, (void*)frame_dealloc},
    {Py_tp_members, frame_members},
    {Py_tp_doc, (void*)"One module forward in flight (nantrace_torch._modules.Frame, in C)."},
    {0, NULL}};

static PyType_Spec frame_spec = {"_nantrace_fast.Frame", sizeof(Frame), 0,
                                 Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, frame_slots};

PyObject* module_hooks_frame_type(void) {
  if (!g_frame_type) g_frame_type = (PyTypeObject*)PyType_FromSpec(&frame_spec);
  Py_XINCREF(g_frame_type);
  return (PyObject*)g_frame_type;
}

static Frame* new_frame(void) {
  allocfunc alloc = (allocfunc)PyType_GetSlot(g_frame_type, Py_tp_alloc);
  return (Frame*)alloc(g_frame_type, 0);
}

/* ---- what the hooks need from the Python side (configure) ---- */

static struct {
  int ready;
  PyObject* tls;            /* _runtime.tls: .stack, .suspended */
  PyObject* runtime;        /* _runtime: ._started, .module_checks */
  PyObject* investigation;  /* _investigation: .culprit */
  PyObject* capture_armed;  /* _capture.armed() */
  PyObject* transparent;    /* dict type -> bool (_modules._transparent_types) */
  PyObject* grad_checks;    /* dict (path, name) -> GradCheck */
  PyObject* make_grad_check;/* _modules._grad_check(path, mtype, name) */
  PyObject* hook_gradient;  /* _modules._hook_gradient(t, h) -> node */
  PyObject* on_nonfinite;   /* _modules._fast_nonfinite(frame, module, args, kwargs) */
  PyObject* grad_enabled;   /* torch.is_grad_enabled */
  PyObject* plain_types;    /* tuple of exact tensor types */
  PyObject* output_name;    /* b"output" */
  PyObject* tuple_names;    /* tuple of b"output[i]" */
  PyObject* ordered_dict;   /* collections.OrderedDict: a tensor's hook dict must take weak references */
} H;

static PyObject *s_stack, *s_suspended, *s_started, *s_module_checks, *s_culprit, *s_paths, *s_version, *s_requires_grad,
    *s_grad_fn, *s_entries, *s_finite, *s_mtype, *s_backward_hooks, *s_register_hook_dict;
static PyObject* g_hook_key; /* -1: _modules._HOOK_KEY */

PyObject* module_hooks_configure(PyObject* self, PyObject* args) {
  (void)self;
  PyObject* v[14];
  if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOOO", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8],
                        &v[9], &v[10], &v[11], &v[12], &v[13]))
    return NULL;
  PyObject** dst[] = {&H.tls, &H.runtime, &H.investigation, &H.capture_armed, &H.transparent, &H.grad_checks,
                      &H.make_grad_check, &H.hook_gradient, &H.on_nonfinite, &H.grad_enabled, &H.plain_types,
                      &H.output_name, &H.tuple_names, &H.ordered_dict};
  if (!PyDict_Check(v[4]) || !PyDict_Check(v[5]) || !PyTuple_Check(v[10]) || !PyBytes_Check(v[11]) ||
      !PyTuple_Check(v[12]) || PyTuple_Size(v[12]) < 8) {
    PyErr_SetString(PyExc_TypeError, "configure: unexpected argument types");
    return NULL;
  }
  for (int i = 0; i < 14; ++i) {
    Py_INCREF(v[i]);
    SET_OWNED(*dst[i], v[i]);
  }
#define INTERN(var, text) \
  if (!var && !(var = PyUnicode_InternFromString(text))) return NULL;
  INTERN(s_stack, "stack");
  INTERN(s_suspended, "suspended");
  INTERN(s_started, "_started");
  INTERN(s_module_checks, "module_checks");
  INTERN(s_culprit, "culprit");
  INTERN(s_paths, "paths");
  INTERN(s_version, "_version");
  INTERN(s_requires_grad, "requires_grad");
  INTERN(s_grad_fn, "grad_fn");
  INTERN(s_entries, "entries");
  INTERN(s_finite, "finite");
  INTERN(s_mtype, "mtype");
  INTERN(s_backward_hooks, "_backward_hooks");
  INTERN(s_register_hook_dict, "_register_hook_dict");
#undef INTERN
  if (!g_hook_key && !(g_hook_key = PyLong_FromLong(-1))) return NULL;
  H.ready = module_hooks_frame_type() != NULL;
  Py_XDECREF(g_frame_type); /* module_hooks_frame_type added a reference for its caller */
  if (!H.ready) return NULL;
  Py_RETURN_TRUE;
}

/* An attribute that is True; 0 when absent (error cleared) or anything else. */
static int attr_true(PyObject* o, PyObject* name) {
  PyObject* v = PyObject_GetAttr(o, name);
  if (!v) {
    PyErr_Clear();
    return 0;
  }
  const int t = v == Py_True;
  Py_DECREF(v);
  return t;
}

/* The thread's module stack (new reference), or NULL without error when there is none. */
static PyObject* stack_of_thread(void) {
  PyObject* st = PyObject_GetAttr(H.tls, s_stack);
  if (!st) {
    PyErr_Clear();
    return NULL;
  }
  if (!PyList_Check(st)) {
    Py_DECREF(st);
    return NULL;
  }
  return st;
}

PyObject* module_hooks_pre(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  (void)self;
  if (nargs != 2 || !H.ready) Py_RETURN_FALSE;
  PyObject *module = args[0], *margs = args[1];
  if (attr_true(H.tls, s_suspended)) Py_RETURN_TRUE; /* our own replay runs: nothing to do */
  if (!attr_true(H.runtime, s_started)) Py_RETURN_FALSE;
  PyObject* transparent = PyDict_GetItemWithError(H.transparent, (PyObject*)Py_TYPE(module));
  if (!transparent) {
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_FALSE; /* a type not yet classified */
  }
  if (transparent == Py_True) Py_RETURN_TRUE;
  /* Op-level checks armed in one module (after a fault): that module's forward is the Python
   * hook's (it enters the dispatch mode); every other module stays here. */
  PyObject* culprit = PyObject_GetAttr(H.investigation, s_culprit);
  if (!culprit) return NULL;
  PyObject* st = stack_of_thread();
  if (!st) {
    Py_DECREF(culprit);
    Py_RETURN_FALSE;
  }
  const Py_ssize_t depth = PyList_Size(st);
  PyObject* result = Py_False;
  if (depth > 0) {
    Frame* parent = (Frame*)PyList_GetItem(st, depth - 1); /* borrowed */
    if (parent && Py_TYPE(parent) == g_frame_type) {
      PyObject* paths = PyObject_GetAttr(parent->info, s_paths);
      PyObject* key = paths ? PyLong_FromVoidPtr(module) : NULL;
      PyObject* e = key ? PyDict_GetItemWithError(paths, key) : NULL; /* borrowed */
      Py_XDECREF(key);
      if (!e && PyErr_Occurred()) {
        Py_XDECREF(paths);
        Py_DECREF(st);
        Py_DECREF(culprit);
        return NULL;
      }
      int culprit_here = 0;
      if (e && PyTuple_Check(e) && PyTuple_Size(e) == 2 && culprit != Py_None) {
        culprit_here = PyObject_RichCompareBool(PyTuple_GetItem(e, 0), culprit, Py_EQ);
        if (culprit_here < 0) {
          Py_XDECREF(paths);
          Py_DECREF(st);
          Py_DECREF(culprit);
          return NULL;
        }
      }
      if (e && PyTuple_Check(e) && PyTuple_Size(e) == 2 && !culprit_here) {
        Frame* f = new_frame();
        if (!f) {
          Py_XDECREF(paths);
          Py_DECREF(st);
          Py_DECREF(culprit);
          return NULL;
        }
        PyObject* vals[] = {module, PyTuple_GetItem(e, 0), PyTuple_GetItem(e, 1), parent->root, parent->info,
                            parent->seen, margs, Py_None, parent->nodes, Py_None};
        PyObject** slots[] = {&f->module, &f->path, &f->mtype, &f->root, &f->info, &f->seen, &f->args, &f->kwargs,
                              &f->nodes, &f->opmode};
        for (int i = 0; i < 10; ++i) {
          Py_INCREF(vals[i]);
          *slots[i] = vals[i];
        }
        f->phase = parent->phase;
        f->pushed = 0;
        const int ok = PyList_Append(st, (PyObject*)f);
        if (ok == 0 && attr_true(H.runtime, s_module_checks) && module_hooks_push(f->path, f->mtype)) f->pushed = 1;
        Py_DECREF(f);
        if (ok != 0) {
          Py_XDECREF(paths);
          Py_DECREF(st);
          Py_DECREF(culprit);
          return NULL;
        }
        result = Py_True;
      }
      Py_XDECREF(paths);
    }
  }
  Py_DECREF(st);
  Py_DECREF(culprit);
  Py_INCREF(result);
  return result;
}

/* The outputs this path checks: one plain tensor, or a tuple of up to 8 plain tensors or
 * None. Fills names/tensors (borrowed) and returns their number, or -1 for anything else. */
static int outputs_of(PyObject* output, PyObject** names, PyObject** tensors) {
  PyTypeObject* ty = Py_TYPE(output);
  for (Py_ssize_t k = 0; k < PyTuple_Size(H.plain_types); ++k)
    if ((PyObject*)ty == PyTuple_GetItem(H.plain_types, k)) {
      names[0] = H.output_name;
      tensors[0] = output;
      return 1;
    }
  if (!PyTuple_Check(output) || ty != &PyTuple_Type) return -1;
  const Py_ssize_t n = PyTuple_Size(output);
  if (n > 8) return -1;
  int m = 0;
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* v = PyTuple_GetItem(output, i);
    if (v == Py_None) continue;
    int plain = 0;
    for (Py_ssize_t k = 0; k < PyTuple_Size(H.plain_types); ++k)
      if ((PyObject*)Py_TYPE(v) == PyTuple_GetItem(H.plain_types, k)) plain = 1;
    if (!plain) return -1;
    names[m] = PyTuple_GetItem(H.tuple_names, i);
    tensors[m] = v;
    ++m;
  }
  return m;
}

/* Checked before in this root forward and not modified since (version unchanged)? Records it. */
static int seen_before(PyObject* seen, PyObject* t, PyObject** weak_out) {
  *weak_out = NULL;
  PyObject* vobj = PyObject_GetAttr(t, s_version);
  long ver = -1;
  if (vobj) {
    ver = PyLong_AsLong(vobj);
    Py_DECREF(vobj);
    if (PyErr_Occurred()) {
      PyErr_Clear();
      ver = -1;
    }
  } else {
    PyErr_Clear(); /* an inference-mode tensor keeps no version */
  }
  PyObject* key = PyLong_FromVoidPtr(t);
  if (!key) return -1;
  PyObject* prev = PyDict_GetItemWithError(seen, key); /* borrowed */
  if (!prev && PyErr_Occurred()) {
    Py_DECREF(key);
    return -1;
  }
  if (prev && PyTuple_Check(prev) && PyTuple_Size(prev) == 2) {
    PyObject* alive = PyObject_CallNoArgs(PyTuple_GetItem(prev, 0));
    const long pver = PyLong_AsLong(PyTuple_GetItem(prev, 1));
    const int same = alive == t && pver == ver;
    Py_XDECREF(alive);
    if (PyErr_Occurred()) PyErr_Clear();
    if (same) {
      Py_DECREF(key);
      return 1;
    }
  }
  PyObject* wr = PyWeakref_NewRef(t, NULL);
  PyObject* entry = wr ? Py_BuildValue("(Ol)", wr, ver) : NULL;
  const int rc = entry ? PyDict_SetItem(seen, key, entry) : -1;
  Py_XDECREF(entry);
  Py_DECREF(key);
  if (rc != 0) {
    Py_XDECREF(wr);
    return -1;
  }
  *weak_out = wr;
  return 0;
}

/* _modules._hook_gradient's common case: a node and no hook dict yet on the tensor: the dict
 * {-1: h} set on it and registered with its node, as Tensor.register_hook does without the
 * RemovableHandle. Anything else, or a failure, goes to the Python function. New reference to
 * the node (or None), NULL with an error. */
static PyObject* hook_dict(PyObject* t, PyObject* h) {
  PyObject* node = PyObject_GetAttr(t, s_grad_fn);
  if (!node) return NULL;
  if (node != Py_None) {
    PyObject* hooks = PyObject_GetAttr(t, s_backward_hooks);
    const int free_slot = hooks == Py_None;
    Py_XDECREF(hooks);
    if (!hooks) PyErr_Clear();
    if (free_slot) {
      PyObject* d = PyObject_CallNoArgs(H.ordered_dict);
      int ok = d && PyObject_SetItem(d, g_hook_key, h) == 0 && PyObject_SetAttr(t, s_backward_hooks, d) == 0;
      Py_XDECREF(d);
      PyObject* r = ok ? PyObject_CallMethodObjArgs(node, s_register_hook_dict, t, NULL) : NULL;
      if (r) {
        Py_DECREF(r);
        return node;
      }
      PyErr_Clear();
      if (ok && PyObject_SetAttr(t, s_backward_hooks, Py_None) != 0) PyErr_Clear();
    }
  }
  Py_DECREF(node);
  return PyObject_CallFunctionObjArgs(H.hook_gradient, t, h, NULL);
}

/* The gradient arriving at output t (named `name`) will be checked: GradCheck registered on
 * its autograd node, and the node remembered for a backward origin. 0, or -1 with an error. */
static int hook_gradient(Frame* f, PyObject* t, PyObject* name, PyObject* wr, PyObject* margs, PyObject* kwargs) {
  PyObject* key = PyTuple_Pack(2, f->path, name);
  if (!key) return -1;
  PyObject* h = PyDict_GetItemWithError(H.grad_checks, key); /* borrowed */
  Py_DECREF(key);
  if (h) {
    PyObject* mt = PyObject_GetAttr(h, s_mtype);
    if (!mt) return -1;
    const int same = PyObject_RichCompareBool(mt, f->mtype, Py_EQ);
    Py_DECREF(mt);
    if (same < 0) return -1;
    if (!same) h = NULL;
  } else if (PyErr_Occurred()) {
    return -1;
  }
  PyObject* owned = NULL;
  if (!h) {
    owned = PyObject_CallFunctionObjArgs(H.make_grad_check, f->path, f->mtype, name, NULL);
    if (!owned) return -1;
    h = owned;
  }
  int rc = PyObject_SetAttr(h, s_finite, Py_False);
  PyObject* node = rc == 0 ? hook_dict(t, h) : NULL;
  if (!node) rc = -1;
  if (rc == 0 && node != Py_None && f->nodes != Py_None) {
    PyObject* entries = PyObject_GetAttr(f->nodes, s_entries);
    PyObject* entry = entries ? PyTuple_Pack(5, h, node, margs, kwargs, wr) : NULL;
    rc = entry ? PyList_Append(entries, entry) : -1;
    Py_XDECREF(entry);
    Py_XDECREF(entries);
  }
  Py_XDECREF(node);
  Py_XDECREF(owned);
  return rc;
}

PyObject* module_hooks_post(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  (void)self;
  if (nargs != 4 || !H.ready) Py_RETURN_FALSE;
  PyObject *module = args[0], *margs = args[1], *kwargs = args[2], *output = args[3];
  if (attr_true(H.tls, s_suspended)) Py_RETURN_TRUE;
  PyObject* st = stack_of_thread();
  if (!st) Py_RETURN_TRUE; /* no forward in flight: nothing to close (as the Python hook) */
  const Py_ssize_t depth = PyList_Size(st);
  Frame* f = depth > 0 ? (Frame*)PyList_GetItem(st, depth - 1) : NULL;
  if (!f || Py_TYPE(f) != g_frame_type || f->module != module || f->root == module || f->opmode != Py_None) {
    Py_DECREF(st);
    Py_RETURN_FALSE; /* an unwind, a root, op-level mode: the Python hook */
  }
  if (f->phase == NT_PHASE_FORWARD) {
    PyObject* armed = PyObject_CallNoArgs(H.capture_armed);
    if (!armed) {
      Py_DECREF(st);
      return NULL;
    }
    const int is_armed = armed == Py_True;
    Py_DECREF(armed);
    if (is_armed) {
      Py_DECREF(st);
      Py_RETURN_FALSE;
    }
  }
  PyObject* names[8];
  PyObject* tensors[8];
  nt_tensor desc[8];
  int64_t dims[8][32];
  int n = 0;
  if (f->pushed) {
    n = outputs_of(output, names, tensors);
    if (n < 0) {
      Py_DECREF(st);
      Py_RETURN_FALSE;
    }
    for (int i = 0; i < n; ++i) {
      const int d = fast_describe(tensors[i], &desc[i], dims[i], dims[i] + 16);
      if (d != 0) {
        if (d < 0) PyErr_Clear();
        Py_DECREF(st);
        Py_RETURN_FALSE; /* a device tensor, an empty one, another dtype: the Python hook */
      }
    }
  }
  /* Decided: this frame is ours to close. */
  Py_INCREF(f);
  if (PySequence_DelItem(st, depth - 1) != 0) {
    Py_DECREF(f);
    Py_DECREF(st);
    return NULL;
  }
  Py_DECREF(st);
  int rc = 0;
  if (n > 0) {
    PyObject* ge = PyObject_CallNoArgs(H.grad_enabled);
    const int grad_on = ge == Py_True;
    if (!ge) rc = -1;
    Py_XDECREF(ge);
    for (int i = 0; i < n && rc == 0; ++i) {
      PyObject* wr = NULL;
      const int seen = seen_before(f->seen, tensors[i], &wr);
      if (seen < 0) {
        rc = -1;
        break;
      }
      if (seen) continue;
      nt_site site;
      site.phase = f->phase;
      site.role = NT_ROLE_OUTPUT;
      site.module_path = PyBytes_AsString(f->path);
      site.module_type = PyBytes_AsString(f->mtype);
      site.op = NULL;
      site.tensor_name = PyBytes_AsString(names[i]);
      const int r = (site.module_path && site.module_type && site.tensor_name) ? module_hooks_check(&site, &desc[i]) : -1;
      if (r < 0 && PyErr_Occurred()) rc = -1;
      if (rc == 0 && r == NT_NONFINITE) {
        PyObject* ok = PyObject_CallFunctionObjArgs(H.on_nonfinite, (PyObject*)f, module, margs, kwargs, NULL);
        if (!ok) rc = -1;
        Py_XDECREF(ok);
      }
      if (rc == 0 && grad_on && r != NT_SKIPPED && attr_true(tensors[i], s_requires_grad))
        rc = hook_gradient(f, tensors[i], names[i], wr ? wr : Py_None, margs, kwargs);
      Py_XDECREF(wr);
    }
  }
  if (f->pushed) {
    module_hooks_pop();
    f->pushed = 0;
  }
  Py_DECREF(f);
  if (rc != 0) return NULL;
  Py_RETURN_TRUE;
}


/* ---- GradCheck: the gradient check at one module output, called by autograd (the Python
 * class _modules.GradCheck, in C: same attributes, same behaviour) ---- */

typedef struct {
  PyObject_HEAD
  PyObject *path, *mtype, *name;
  char finite;
} GradCheck;

static PyTypeObject* g_gradcheck_type;

static struct {
  int ready;
  PyObject* guard;          /* _guard: ._all_off, ._disabled */
  PyObject* api_check;      /* R.api.check, for what the C path hands back */
  PyObject* on_nonfinite;   /* _backward_origin.on_nonfinite_grad(check) */
  PyObject* disable;        /* _guard.disable(kind, exc) */
  PyObject* kind;           /* "backward" */
} G;

static PyObject *s_all_off, *s_disabled;

static int gc_init(PyObject* self, PyObject* args, PyObject* kw) {
  static char* names[] = {"path", "mtype", "name", NULL};
  GradCheck* g = (GradCheck*)self;
  PyObject *path, *mtype, *name;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO", names, &path, &mtype, &name)) return -1;
  Py_INCREF(path);
  Py_INCREF(mtype);
  Py_INCREF(name);
  SET_OWNED(g->path, path);
  SET_OWNED(g->mtype, mtype);
  SET_OWNED(g->name, name);
  g->finite = 0;
  return 0;
}

static int gc_traverse(PyObject* self, visitproc visit, void* arg) {
  GradCheck* g = (GradCheck*)self;
  Py_VISIT(g->path);
  Py_VISIT(g->mtype);
  Py_VISIT(g->name);
  Py_VISIT((PyObject*)Py_TYPE(self));
  return 0;
}

static int gc_clear(PyObject* self) {
  GradCheck* g = (GradCheck*)self;
  Py_CLEAR(g->path);
  Py_CLEAR(g->mtype);
  Py_CLEAR(g->name);
  return 0;
}

static void gc_dealloc(PyObject* self) {
  PyTypeObject* tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  gc_clear(self);
  freefunc free_fn = (freefunc)PyType_GetSlot(tp, Py_tp_free);
  free_fn(self);
  Py_DECREF(tp);
}

/* The hook is off when all hooks are, or when its kind was switched off after an error. */
static int backward_off(void) {
  if (attr_true(G.guard, s_all_off)) return 1;
  PyObject* disabled = PyObject_GetAttr(G.guard, s_disabled);
  if (!disabled) {
    PyErr_Clear();
    return 0;
  }
  const int off = PySet_Check(disabled) ? PySet_Contains(disabled, G.kind) == 1 : 0;
  Py_DECREF(disabled);
  return off;
}

/* What a failure inside does: one line and the backward checks off, never into autograd. */
static void fail_backward(void) {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  PyObject* r = PyObject_CallFunctionObjArgs(G.disable, G.kind, value ? value : Py_None, NULL);
  Py_XDECREF(r);
  PyErr_Clear();
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
}

static PyObject* gc_call(PyObject* self, PyObject* args, PyObject* kw) {
  (void)kw;
  GradCheck* g = (GradCheck*)self;
  PyObject* grad = PyTuple_Size(args) == 1 ? PyTuple_GetItem(args, 0) : NULL;
  if (!grad || !G.ready || grad == Py_None || backward_off() || attr_true(H.tls, s_suspended)) Py_RETURN_NONE;
  nt_tensor desc;
  int64_t dims[32];
  long r = -1;
  const int d = fast_describe(grad, &desc, dims, dims + 16);
  if (d == 0 && PyBytes_Check(g->path) && PyBytes_Check(g->mtype) && PyBytes_Check(g->name)) {
    nt_site site;
    site.phase = NT_PHASE_BACKWARD;
    site.role = NT_ROLE_OUTPUT;
    site.module_path = PyBytes_AsString(g->path);
    site.module_type = PyBytes_AsString(g->mtype);
    site.op = NULL;
    site.tensor_name = PyBytes_AsString(g->name);
    r = module_hooks_check(&site, &desc);
  } else {
    if (d < 0) PyErr_Clear();
    PyObject* res = PyObject_CallFunction(G.api_check, "iiOOOOO", (int)NT_PHASE_BACKWARD, (int)NT_ROLE_OUTPUT, g->path,
                                          g->mtype, Py_None, g->name, grad);
    if (!res) {
      fail_backward();
      Py_RETURN_NONE;
    }
    r = PyLong_AsLong(res);
    Py_DECREF(res);
    if (PyErr_Occurred()) {
      fail_backward();
      Py_RETURN_NONE;
    }
  }
  if (r == NT_FINITE) {
    g->finite = 1;
  } else if (r == NT_NONFINITE) {
    PyObject* res = PyObject_CallFunctionObjArgs(G.on_nonfinite, self, NULL);
    if (!res) fail_backward();
    Py_XDECREF(res);
  }
  Py_RETURN_NONE;
}

static PyMemberDef gc_members[] = {
    {"path", T_OBJECT_EX, offsetof(GradCheck, path), 0, NULL},
    {"mtype", T_OBJECT_EX, offsetof(GradCheck, mtype), 0, NULL},
    {"name", T_OBJECT_EX, offsetof(GradCheck, name), 0, NULL},
    {"finite", T_BOOL, offsetof(GradCheck, finite), 0, NULL},
    {NULL, 0, 0, 0, NULL}};

static PyType_Slot gc_slots[] = {
    {Py_tp_init, (void*)gc_init},
    {Py_tp_traverse, (void*)gc_traverse},
    {Py_tp_clear, (void*)gc_clear},
    {Py_tp_dealloc, (void*)gc_dealloc},
    {Py_tp_call, (void*)gc_call},
    {Py_tp_members, gc_members},
    {Py_tp_doc, (void*)"The gradient check at one module output (nantrace_torch._modules.GradCheck, in C)."},
    {0, NULL}};

static PyType_Spec gc_spec = {"_nantrace_fast.GradCheck", sizeof(GradCheck), 0,
                              Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, gc_slots};

PyObject* module_hooks_gradcheck_type(void) {
  if (!g_gradcheck_type) g_gradcheck_type = (PyTypeObject*)PyType_FromSpec(&gc_spec);
  Py_XINCREF(g_gradcheck_type);
  return (PyObject*)g_gradcheck_type;
}

/* configure_grad_checks(guard, api_check, on_nonfinite_grad, disable) -> True. After
 * configure_hooks (the thread state comes from there). */
PyObject* module_hooks_configure_grad(PyObject* self, PyObject* args) {
  (void)self;
  PyObject *guard, *api_check, *on_nonfinite, *disable;
  if (!PyArg_ParseTuple(args, "OOOO", &guard, &api_check, &on_nonfinite, &disable)) return NULL;
  if (!H.ready) {
    PyErr_SetString(PyExc_RuntimeError, "configure_hooks first");
    return NULL;
  }
  if (!s_all_off && !(s_all_off = PyUnicode_InternFromString("_all_off"))) return NULL;
  if (!s_disabled && !(s_disabled = PyUnicode_InternFromString("_disabled"))) return NULL;
  if (!G.kind && !(G.kind = PyUnicode_InternFromString("backward"))) return NULL;
  PyObject* vals[] = {guard, api_check, on_nonfinite, disable};
  PyObject** dst[] = {&G.guard, &G.api_check, &G.on_nonfinite, &G.disable};
  for (int i = 0; i < 4; ++i) {
    Py_INCREF(vals[i]);
    SET_OWNED(*dst[i], vals[i]);
  }
  G.ready = 1;
  Py_RETURN_TRUE;
}
