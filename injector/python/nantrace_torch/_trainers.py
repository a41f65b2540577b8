"""What nantrace knows of particular trainers, kept at the edge: the core gets neutral facts
(the config file, which key turns fp16 on and its value, which key holds the learning rate
and its value) and never a trainer's key names.

Each entry of KNOWN says how to recognise the trainer (its script name) and where its
settings live; a config given with -c/--config that no entry claims is searched for the
common spellings in GENERIC."""
import os

# GPT-SoVITS's SoVITS fine-tuning: `python s2_train.py` reads configs/s2.json (or -c PATH);
# fp16 is train.fp16_run, the learning rate train.learning_rate.
KNOWN = (
    {"trainer": "GPT-SoVITS s2_train.py", "scripts": ("s2_train.py",), "default_config": ("configs", "s2.json"),
     "fp16": ("train", "fp16_run"), "lr": ("train", "learning_rate"),
     # s2_train.py logs a 0-based global_step, incremented after each optimizer step: at
     # nantrace's step N (from 1) it reads N - 1.
     "step_counter": ("global_step", -1),
     # At start it loads the newest G_*.pth / D_*.pth of its log directory
     # (utils.latest_checkpoint_path: the largest number in the name) and resumes from it.
     "resumes_from": ("G_*.pth", "D_*.pth"),
     "default_lr": 1e-4},
)
# Spellings seen in JSON training configs of other projects (VITS-family, HiFi-GAN, ...).
GENERIC = {
    "fp16": (("train", "fp16_run"), ("train", "fp16"), ("fp16_run",), ("fp16",)),
    "lr": (("train", "learning_rate"), ("train", "lr"), ("learning_rate",), ("lr",)),
}


def trainer_of(argv):
    script = os.path.basename(argv[0]) if argv else ""
    for t in KNOWN:
        if script in t["scripts"]:
            return t
    return None


def config_path(argv, cwd):
    """The JSON config named by -c/--config, or a known trainer's default config."""
    for i, a in enumerate(argv):
        if a in ("-c", "--config") and i + 1 < len(argv):
            return os.path.join(cwd, argv[i + 1])
        if a.startswith("--config="):
            return os.path.join(cwd, a.split("=", 1)[1])
    t = trainer_of(argv)
    if t and t.get("default_config"):
        p = os.path.join(cwd, *t["default_config"])
        if os.path.isfile(p):
            return p
    return None


def _get(cfg, path):
    cur = cfg
    for k in path:
        if not isinstance(cur, dict) or k not in cur:
            return None
        cur = cur[k]
    return cur


def facts(cfg, argv):
    """The neutral facts of a parsed config (nantrace.h, NT_EVENT_CONFIG): {"trainer",
    "fp16_key", "fp16", "lr_key", "learning_rate", "default_learning_rate", "step_counter",
    "step_counter_offset"},
    each only when found."""
    t = trainer_of(argv)
    out = {}
    if t:
        out["trainer"] = t["trainer"]
        if t.get("step_counter"):
            out["step_counter"], out["step_counter_offset"] = t["step_counter"]
        if t.get("default_lr"):
            out["default_learning_rate"] = t["default_lr"]
    for what, value_key, key_key, ok in (("fp16", "fp16", "fp16_key", lambda v: isinstance(v, bool)),
                                         ("lr", "learning_rate", "lr_key",
                                          lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))):
        paths = (t[what],) if t else GENERIC[what]
        for p in paths:
            v = _get(cfg, p)
            if v is not None and ok(v):
                out[key_key] = ".".join(p)
                out[value_key] = v
                break
    return out
