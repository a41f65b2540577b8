"""One story across a run's outputs (issue 12, item 2): the stderr lines, report.md, report.json
and the trace's origin markers agree on the finding's step, phase, module, op, kind and counts.

check(stderr_text, report_json, report_md_text, trace_path) returns a list of disagreements,
each one line naming the output and the field."""
import trace_check as T


def _finding_line(f):
    """The stderr line the runtime prints for a finding (src/runtime/announcements.cpp)."""
    line = "finding: %s at step %d (%s)" % (f["kind_text"], f["step"], f["phase"])
    if f.get("module_path"):
        line += " in " + f["module_path"]
    if f.get("op"):
        line += ", op " + f["op"]
    return line


def _md_unescape(s):
    for c in "|`\\*_[]":
        s = s.replace("\\" + c, c)
    return s.replace("&lt;", "<").replace("&gt;", ">")


def _md_table(md):
    """The summary table's rows: {key: value} (first table of the report)."""
    rows = {}
    for line in md.splitlines():
        if line.startswith("| ") and line.count(" | ") >= 1 and not line.startswith("| role"):
            k, _, v = line[2:].rstrip(" |").partition(" | ")
            rows.setdefault(_md_unescape(k), _md_unescape(v))
        elif rows and not line.startswith("|"):
            break
    return rows


def _evaluation_story(ev, lines, md, trace_path, training_found):
    """An evaluation finding: stderr's line, report.md's section and the trace's marker name its
    step and module, as report.json does."""
    bad = []
    after = "after step %d" % ev["step"] if ev["step"] >= 1 else "before step 1"
    said = [l for l in lines if l.startswith("non-finite value in evaluation")]
    if len(said) != 1 or after not in said[0] or ev["module_path"] not in said[0]:
        bad.append("stderr: evaluation lines %r do not name %s and %r once" % (said, after, ev["module_path"]))
    section = md.split("## Evaluation", 1)[1].split("\n## ", 1)[0] if "## Evaluation" in md else ""
    step_words = "after training step %d" % ev["step"] if ev["step"] >= 1 else "before the first training step"
    if step_words not in section or ev["module_path"] not in section:
        bad.append("report.md: the Evaluation section does not name %r and %r" % (step_words, ev["module_path"]))
    try:
        _, events, _ = T.load(trace_path)
    except (OSError, ValueError) as e:
        return bad + ["trace: cannot be read: %s" % e]
    marks = [e for e in events if e.get("ph") == "i" and str(e.get("name", "")).startswith("non-finite in evaluation")]
    if len(marks) != 1 or marks[0].get("args", {}).get("step") != ev["step"] or \
            marks[0].get("args", {}).get("module") != ev["module_path"]:
        bad.append("trace: evaluation markers %r do not name step %d, %r once" % (
            [m.get("args") for m in marks], ev["step"], ev["module_path"]))
    return bad


def check(stderr_text, rep, md, trace_path):
    bad = []
    f = rep["finding"]
    lines = [l[len("nantrace: "):] for l in stderr_text.splitlines() if l.startswith("nantrace: ")]
    ev = rep.get("evaluation")
    if ev:
        bad += _evaluation_story(ev, lines, md, trace_path, training_found=bool(f.get("found")))
    if not f.get("found"):
        if not any(l.startswith("finding: ") for l in lines):
            bad.append("stderr: no 'finding:' line")
        title = "# nantrace: non-finite value in evaluation only" if ev else "# nantrace: no NaN or Inf seen"
        if not md.startswith(title):
            bad.append("report.md: title does not start %r" % title)
        return bad
    want = _finding_line(f)
    if want not in lines:
        bad.append("stderr: no line %r (finding lines: %s)" % (want, [l for l in lines if l.startswith("finding")]))
    # report.md: title and summary table.
    title = md.splitlines()[0] if md else ""
    if not title.startswith("# nantrace: " + f["kind_text"]) or (" at step %d" % f["step"]) not in title:
        bad.append("report.md: title %r does not say %s at step %d" % (title, f["kind_text"], f["step"]))
    rows = _md_table(md)
    checks = [("Step", str(f["step"]), "startswith"), ("Phase", f["phase"], "eq"),
              ("Kind", "%s (%s)" % (f["kind"], f["kind_text"]), "eq")]
    if f.get("module_path"):
        checks.append(("Module", f["module_path"], "startswith"))
    checks.append(("Op", f["op"] if f.get("op") else "- (module level)", "startswith"))
    for key, value, how in checks:
        got = rows.get(key)
        if got is None or (got != value if how == "eq" else not got.startswith(value)):
            bad.append("report.md: %s is %r, report.json says %r" % (key, got, value))
    s = f["stats"]
    counts = "%d NaN, %d +inf, %d -inf of %d" % (s["nan"], s["posinf"], s["neginf"], s["numel"])
    count_rows = [v for k, v in rows.items() if k.startswith("Non-finite values")]
    if not count_rows or not count_rows[0].startswith(counts):
        bad.append("report.md: Non-finite values %r, report.json says %r" % (count_rows, counts))
    # The trace: the last origin marker names the finding's module and step.
    try:
        _, events, _ = T.load(trace_path)
    except (OSError, ValueError) as e:
        return bad + ["trace: cannot be read: %s" % e]
    markers = [e for e in events if e.get("ph") == "i" and str(e.get("name", "")).startswith("NaN/Inf origin")]
    if not markers:
        bad.append("trace: no 'NaN/Inf origin' marker")
    else:
        last = markers[-1].get("args", {})
        for key, value in (("step", f["step"]), ("module", f.get("module_path", "")), ("phase", f["phase"])):
            if last.get(key) != value:
                bad.append("trace: the last origin marker's %s is %r, report.json says %r" % (key, last.get(key), value))
    return bad
