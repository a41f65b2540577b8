/*
 * nantrace C ABI — the only door into the library from outside.
 *
 * Callers (the Python/torch hooks, any other framework later) use plain C types only.
 * No function here throws or aborts: a failure inside nantrace is logged once and the
 * call degrades to a no-op returning NT_ERROR (or 0 / NULL where documented).
 *
 * Versioning: NANTRACE_ABI_VERSION increases on any incompatible change; callers check
 * nantrace_abi_version() before using anything else. Structs carry no version field:
 * new fields only ever go into new structs / new functions.
 */
#ifndef NANTRACE_NANTRACE_H
#define NANTRACE_NANTRACE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NANTRACE_ABI_VERSION 1

#if defined(__GNUC__)
#define NT_API __attribute__((visibility("default")))
#else
#define NT_API
#endif

/* ---- enumerations (values are stable; they are part of the ABI) ---- */

typedef enum nt_dtype {
  NT_DTYPE_F16 = 1,
  NT_DTYPE_BF16 = 2,
  NT_DTYPE_F32 = 3,
  NT_DTYPE_F64 = 4
} nt_dtype;

/* Where in a training iteration a checked tensor lives. */
typedef enum nt_phase {
  NT_PHASE_UNKNOWN = 0,
  NT_PHASE_INPUT = 1,          /* a batch entering the top-level model */
  NT_PHASE_FORWARD = 2,        /* module / op outputs in forward */
  NT_PHASE_LOSS = 3,           /* the tensor .backward() is called on */
  NT_PHASE_BACKWARD = 4,       /* gradients arriving at module outputs */
  NT_PHASE_UNSCALE = 5,        /* GradScaler unscale_ / inf check */
  NT_PHASE_OPTIMIZER_GRAD = 6, /* gradients right before an optimizer step */
  NT_PHASE_OPTIMIZER_PARAM = 7, /* parameters right after an optimizer step */
  NT_PHASE_EVALUATION = 8      /* a forward of a model in eval mode under no_grad / inference_mode:
                                  its batch (role input) and its module / op outputs */
} nt_phase;

/* What the tensor is relative to the site. */
typedef enum nt_role {
  NT_ROLE_OUTPUT = 0,   /* the value the site produced: the candidate origin */
  NT_ROLE_INPUT = 1,    /* an input of the site, recorded as evidence */
  NT_ROLE_PARAM = 2,    /* a parameter / buffer of the site, recorded as evidence */
  NT_ROLE_REPLAY = 3    /* an op output from re-running the culprit on captured inputs */
} nt_role;

typedef enum nt_device {
  NT_DEVICE_CPU = 0,
  NT_DEVICE_CUDA = 1
} nt_device;

typedef enum nt_scope_kind {
  NT_SCOPE_MODULE = 1,  /* module forward: name = qualified path, type = class name */
  NT_SCOPE_OP = 2,      /* aten op: name = "aten::exp" */
  NT_SCOPE_REGION = 3   /* anything else shown as a span (optimizer step, backward, ...) */
} nt_scope_kind;

typedef enum nt_event_kind {
  /* Every kind's detail is a JSON object (or empty); its schema is written beside the kind.
   * src/core/frontend_events.h turns each into a typed struct; fields not listed are ignored,
   * a missing optional field takes the default shown. */
  NT_EVENT_NOTE = 0,          /* free text: name = a short label, detail = a sentence (not JSON),
                                 shown in the report's notes */
  NT_EVENT_OPTIMIZER_STEP = 1,/* name = optimizer label; detail = {"lr": number?, "skipped": bool=false} */
  NT_EVENT_SCALER_UPDATE = 2, /* detail = {"scale_before": number, "scale_after": number,
                                 "found_inf": bool? (default: scale_after < scale_before)} */
  NT_EVENT_CHECKPOINT = 3,    /* name = path written by torch.save; detail = {"tensors": int? (floating
                                 tensors in it), "nonfinite_tensors": int?, "nonfinite_names": [string]?
                                 (the first few), "pattern": string? (its numbered family, "logs/G_*.pth"),
                                 "heads_pattern": bool=false (the newest of it when written),
                                 "resumed_from_pattern": bool=false (the script resumes from its newest)} */
  NT_EVENT_CONFIG = 4,        /* name = config file path; detail = neutral facts of the training config:
                                 {"trainer": string? (a known trainer's name), "fp16_key": string? (the
                                 dotted key that turns fp16 on, e.g. "train.fp16_run"), "fp16": bool?,
                                 "lr_key": string?, "learning_rate": number?, "default_learning_rate":
                                 number? (the trainer's own default), "step_counter": string? (the
                                 script's own step counter, e.g. "global_step"), "step_counter_offset":
                                 int? (its value at nantrace's step N is N + offset)} */
  NT_EVENT_WARNING = 5,       /* a frontend-side warning worth a trace marker: name = label, detail = any object */
  NT_EVENT_CHECK_MODE = 6,    /* check level switched: detail = {"module": path, "level": "op"|"module",
                                 "reason": string?} */
  /* The investigation of the origin (frontend -> analysis). Evidence is tied to the origin by
   * these events, not by the order of notes. */
  NT_EVENT_ORIGIN_IN_CODE = 7,/* the value was born in an enclosing module's own code (no hook saw it):
                                 detail = {"module": path, "module_type": string?, "relay": path?
                                 (the module whose output first showed it), "recurrence": bool=false} */
  NT_EVENT_REPLAY_BEGIN = 8,  /* checks until the matching REPLAY_END are evidence of a replay of
                                 `module`: detail = {"module": path, "step": int? (the step whose inputs
                                 were captured), "recurrence": bool=false (captured at a later step),
                                 "graph": bool=false (read from the non-finite tensor's autograd graph,
                                 nothing re-run; "module": "" is then the loss computation)} */
  NT_EVENT_REPLAY_END = 9,    /* detail = {"module": path, "op": string|null (the op the replay pinned),
                                 "inner": path? and "inner_type": string? (the submodule that op ran in,
                                 when `module` ran compiled and no hook saw inside it), and from the
                                 graph: "graph": bool=false, "node": string? (grad_fn name), "status":
                                 "pinned"|"untracked"|"undetermined"|"no_graph", "reason": string?} */
  NT_EVENT_FIX_CHECK = 10,    /* a fix verified on the captured inputs: detail = {"variant": "fp32"|"bf16",
                                 "module": path?, "finite": bool?, "max_abs": number=0, "error": string?} */
  NT_EVENT_EVIDENCE_UNAVAILABLE = 11, /* evidence that could not be had: name = what ("replay",
                                 "repro", "capture"), detail = {"reason": string, "module": path?} */
  NT_EVENT_CAPTURE = 12,      /* capture at the recurrence (device tensors): name = "armed" | "moved_outwards"
                                 | "gave_up", detail = {"module": path, "why": string?, "forwards": int?} */
  NT_EVENT_REPRO_SAVED = 13,  /* the culprit and its inputs saved for `nantrace repro`: name = path */
  NT_EVENT_BACKWARD_ORIGIN = 14,/* the first non-finite gradient of a backward, seen at `seen_at`'s output,
                                 was made by the backward of what consumed that output: detail =
                                 {"module": path ("" = the loss computation or several roots),
                                 "module_type": string?, "node": string? (the grad_fn that made it, when
                                 one node is known), "seen_at": path, "consumers": [path]?} */
  NT_EVENT_EPOCH = 15         /* a training step began a new pass over its DataLoader: name = the dataset's
                                 class, detail = {"epoch": int (the pass of this run, from 1), "batches":
                                 int? (the loader's length), "batch": int? (the pass's batch that began
                                 this step, from 1)} */
} nt_event_kind;

/* Return values of nantrace_check. */
#define NT_FINITE 0
#define NT_NONFINITE 1
#define NT_PENDING 2 /* asynchronous (device) scan enqueued; result arrives later */
#define NT_SKIPPED 3 /* not checked (disabled, unsupported dtype, stream capture...) */
#define NT_ERROR (-1)

/* ---- plain data passed in ---- */

/* A strided view of tensor memory. sizes/strides are in elements, ndim <= 16.
 * data points at the first element of the view (storage offset applied). */
typedef struct nt_tensor {
  const void* data;
  int32_t dtype;        /* nt_dtype */
  int32_t ndim;
  const int64_t* sizes;
  const int64_t* strides;
  int32_t device_type;  /* nt_device */
  int32_t device_index;
  uintptr_t stream;     /* cudaStream_t / CUstream for device tensors; 0 = default */
} nt_tensor;

/* Where a check happens. Strings are copied; they may be freed after the call. */
typedef struct nt_site {
  int32_t phase;            /* nt_phase */
  int32_t role;             /* nt_role */
  const char* module_path;  /* "TinyVits/dec.ups.1"; NULL if none */
  const char* module_type;  /* "ConvTranspose1d"; NULL if none */
  const char* op;           /* "aten::exp"; NULL at module level */
  const char* tensor_name;  /* "output[0]", "grad_output[0]", "weight", "args[1]" ... */
} nt_site;

#define NT_HEADROOM_BINS 40

/* Statistics of one tensor, as computed by the scanner. */
typedef struct nt_stats {
  uint64_t numel;
  uint64_t nan_count;
  uint64_t posinf_count;
  uint64_t neginf_count;
  uint64_t zero_count;
  uint64_t subnormal_count;
  double max_abs_finite;      /* largest finite |x|; 0 if none */
  int64_t first_bad_index;    /* linear (row-major logical) index of first NaN/Inf, -1 if none */
  /* headroom_hist[k]: finite, non-zero, normal values whose binade is k below the dtype's
   * largest binade (k = 0: within 2x of max). The last bin collects everything further down. */
  uint64_t headroom_hist[NT_HEADROOM_BINS];
} nt_stats;

/* ---- functions ---- */

NT_API int nantrace_abi_version(void);

/* Start recording for a frontend ("torch"). Creates the run directory and prints its path
 * on stderr. Idempotent. Returns 1 when recording, 0 when disabled or failed. */
NT_API int nantrace_start(const char* frontend);
/* Finish: analyse, write report.md/report.json, close the trace, print the finding.
 * Idempotent; also runs at process exit. */
NT_API void nantrace_stop(void);
NT_API int nantrace_active(void);

/* Validated configuration. Keys: "check_level" (0 off, 1 module, 2 op), "every",
 * "window", "warn_binades_x10", "verbose". Unknown key -> -1. */
NT_API int64_t nantrace_config_int(const char* key);
/* Run directory (NULL before start). It is created when the first record is written, so it
 * may not exist yet; child processes that inherit NANTRACE_RUN_DIR join it. The pointer stays
 * valid for the process. */
NT_API const char* nantrace_run_dir(void);
/* The name of one of this process's files in the run directory, "<stem>.<ext>" for a single
 * process, "<stem>.rank<R>.<ext>" once a rank of several is known ("<stem>.pid<P>.<ext>" in an
 * inherited directory before that): every file a rank writes is its own. stem: [a-z_]+, ext:
 * [a-z]+; NULL for anything else. The pointer is valid until the next call on any thread. */
NT_API const char* nantrace_run_file_name(const char* stem, const char* ext);

/* Distributed identity; call once known. Changes output file names to carry the rank. */
NT_API void nantrace_set_rank(int32_t rank, int32_t world_size);

/* Environment / context facts for the report ("python", "torch", "device", "argv", ...).
 * The library redacts secrets in values. */
NT_API void nantrace_set_meta(const char* key, const char* value);

/* A progress bar (tqdm) is drawing on stderr (1) or not (0): nantrace's stderr lines then start
 * a line of their own instead of continuing the bar's. */
NT_API void nantrace_set_progress_bar(int32_t active);

/* Program context of the calling thread. */
NT_API void nantrace_step_begin(int64_t step);
NT_API void nantrace_scope_push(int32_t kind, const char* name, const char* type);
NT_API void nantrace_scope_pop(void);

/* Check one tensor at a site; fills *out (may be NULL) for synchronous scans. */
NT_API int nantrace_check(const nt_site* site, const nt_tensor* tensor, nt_stats* out);

/* Whether n CPU tensors hold any NaN/Inf, scanned in the calling thread and recorded nowhere: a
 * filter in front of per-tensor checks (an optimizer's gradients and parameters). Returns the
 * number of tensors holding NaN/Inf (0: all finite) and sets *first_bad (may be NULL) to the index
 * of the first of them (-1 when none); -1 when a tensor is not a scannable CPU tensor (then
 * nothing is claimed and the caller checks them one by one). */
NT_API int32_t nantrace_scan_many(const nt_tensor* tensors, int32_t n, int32_t* first_bad);

/* The same, in one pass that also sums the squares of the elements (in double): *sum_squares
 * (may be NULL) gets their total over the n tensors when all are finite, NaN otherwise. An
 * optimizer's gradient check and global gradient norm at once. Same return values. */
NT_API int32_t nantrace_norm_many(const nt_tensor* tensors, int32_t n, double* sum_squares, int32_t* first_bad);

/* A named scalar time series: "loss_scale", "lr", "loss", "grad_norm", ... */
NT_API void nantrace_scalar(const char* name, double value);
/* The same for a value that belongs to an earlier step: one read back from the device later,
 * without a synchronization (step >= 1; otherwise the current step is used). */
NT_API void nantrace_scalar_at(const char* name, int64_t step, double value);
/* A discrete event; detail_json may be NULL or a JSON object text. */
NT_API void nantrace_event(int32_t kind, const char* name, const char* detail_json);

/* A counter of this process's recording: "checks" (every check record so far),
 * "nonfinite_checks"; -1 for an unknown key. For benchmarks and tests. */
NT_API int64_t nantrace_stat(const char* key);

/* 1 once a fault origin has been found (benign scaler skips do not count). */
NT_API int nantrace_origin_found(void);
/* JSON text of the current finding (or "{}"), owned by the library, valid until next call. Its
 * "capture_module" is the module whose inputs a frontend that checks asynchronously should
 * capture when the fault recurs ("" = none): the library decides, the frontend captures. */
NT_API const char* nantrace_finding_json(void);

/* CUDA injection entry point (CUDA_INJECTION64_PATH). Returns 1. */
NT_API int InitializeInjection(void);

#ifdef __cplusplus
}
#endif

#endif /* NANTRACE_NANTRACE_H */
