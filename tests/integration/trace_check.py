"""A strict checker of nantrace's Chrome traces: the rules of the viewers that read them.

The rules, and where each comes from (docs/outputs.md has the list for users):
- Perfetto's JSON importer (google/perfetto src/trace_processor/importers/json/:
  json_trace_tokenizer.cc, json_utils.cc CoerceToTs; storage/stats.h for the diagnostics):
  * ts and dur are numbers; every non-metadata event has a ts (json_tokenizer_failure);
  * a number is turned into ns as int64(double_us * 1000.0), a string by shifting the
    decimal point: both must give the same ns, or spans that are back to back on our clock
    overlap after import;
  * spans on one thread nest exactly or are disjoint (slice_spill_overlapping_complete_event);
  * no negative ts (trace_sorter_negative_timestamp_dropped), no negative dur;
  * no raw control character inside a string (the tokenizer's ReadOneJsonString fails).
- catapult (chrome://tracing): a counter value that is not a finite number makes the whole
  track's range NaN and it is drawn flat; "distributedInfo" as a metadata event is an import
  warning.
- HTA (HolisticTraceAnalysis 0.5.0, hta/common/trace_file.py, trace_parser.py): the object
  form {"traceEvents": [...]} with the metadata before "traceEvents", and the rank found line
  by line with the regex "rank":\\s+(\\d+).
- nantrace's own: every track is named (process_name, thread_name), a process name does not
  repeat the pid, only the merged trace has a global instant (the fault began here), and a
  killed run's live trace is the array form cut at an event boundary.
"""
import decimal
import json
import math
import re

RANK_RE = re.compile(r'"rank":\s+(\d+)')
CONTROL_RE = re.compile(r'[\x00-\x1f]')


class Num(str):
    """A JSON number kept as its text."""


def _no_constants(name):
    raise ValueError("not strict JSON: literal %s" % name)


def _raw_loads(text):
    return json.loads(text, parse_float=Num, parse_int=Num, parse_constant=_no_constants)


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def load(path):
    """(header, events, finished) of a trace. header is None for the array form; events are
    parsed with ordinary numbers. A live array cut at an event boundary gets its ']'."""
    text = read_text(path)
    doc = parse(text)
    if isinstance(doc, dict):
        header = {k: v for k, v in doc.items() if k != "traceEvents"}
        return header, doc.get("traceEvents", []), True
    return None, doc, False


def parse(text, raw=False):
    stripped = text.rstrip()
    if stripped.startswith("[") and not stripped.endswith("]"):
        stripped = stripped.rstrip(",") + "\n]"
    return _raw_loads(stripped) if raw else json.loads(stripped, parse_constant=_no_constants)


def ns_via_double(num):
    return int(float(num) * 1000.0)


def ns_via_text(num):
    return int(decimal.Decimal(num) * 1000)  # int() truncates toward zero, as Perfetto does


def _is_number(v):
    return isinstance(v, Num)


def check_text(text, finished, rank=None, merged=False, where="trace"):
    """Problems (one line each) with a trace's text; [] when it follows every rule."""
    problems = []

    def bad(msg):
        if len(problems) < 40:
            problems.append("%s: %s" % (where, msg))

    for line_no, line in enumerate(text.splitlines(), 1):
        # Raw control characters never appear in our output (\n between events is outside strings).
        if CONTROL_RE.search(line.replace("\t", "")):
            bad("line %d holds a raw control character" % line_no)
            break
    try:
        doc = parse(text, raw=True)
    except ValueError as e:
        return ["%s: not strict JSON: %s" % (where, e)]
    if finished:
        if not isinstance(doc, dict):
            return ["%s: a finished trace must be the object form {\"traceEvents\": [...]} (HTA reads no other)" % where]
        for key, kind in (("schemaVersion", Num), ("baseTimeNanoseconds", Num), ("traceEvents", list)):
            if not isinstance(doc.get(key), kind):
                bad("top-level %r missing or of the wrong type" % key)
        head = text[:text.find('"traceEvents"')] if '"traceEvents"' in text else text
        for key in ("distributedInfo", "baseTimeNanoseconds", "schemaVersion"):
            if key in doc and ('"%s"' % key) not in head:
                bad("%r comes after \"traceEvents\": HTA stops reading metadata there" % key)
        if rank is not None:
            di = doc.get("distributedInfo")
            if not isinstance(di, dict) or str(di.get("rank")) != str(rank):
                bad("distributedInfo %r does not say rank %s" % (di, rank))
            first = None
            for line in text.splitlines():
                m = RANK_RE.search(line)
                if m:
                    first = m.group(1)
                    break
            if first != str(rank):
                bad("HTA's rank regex finds %r first, not %s" % (first, rank))
        events = doc.get("traceEvents", [])
    else:
        if not isinstance(doc, list):
            return ["%s: a live trace must be the array form (both viewers load it cut at an event boundary)" % where]
        events = doc

    process_names, thread_names, used_pids, used_threads = {}, set(), set(), set()
    spans = {}
    globals_seen = []
    for i, e in enumerate(events):
        if not isinstance(e, dict):
            bad("event %d is not an object" % i)
            continue
        ph, name, pid, tid = e.get("ph"), e.get("name"), e.get("pid"), e.get("tid")
        if ph == "M":
            if name == "distributedInfo":
                bad("distributedInfo written as a metadata event (catapult warns, Perfetto ignores it)")
            elif name == "process_name":
                process_names[str(pid)] = (e.get("args") or {}).get("name")
            elif name == "thread_name":
                thread_names.add((str(pid), str(tid)))
            continue
        ts = e.get("ts")
        if not _is_number(ts):
            bad("event %d (%s %r) has no numeric ts: %r" % (i, ph, name, ts))
            continue
        if ns_via_double(ts) != ns_via_text(ts):
            bad("event %d (%r): ts %s reads as %d ns as a double but %d ns as text"
                % (i, name, ts, ns_via_double(ts), ns_via_text(ts)))
        if ns_via_double(ts) < 0:
            bad("event %d (%r): negative ts %s (Perfetto drops it)" % (i, name, ts))
        used_pids.add(str(pid))
        if ph == "X":
            dur = e.get("dur")
            if not _is_number(dur) or decimal.Decimal(dur) < 0:
                bad("event %d (%r): dur %r is not a non-negative number" % (i, name, dur))
                continue
            if ns_via_double(dur) != ns_via_text(dur):
                bad("event %d (%r): dur %s is not exact in ns as a double" % (i, name, dur))
            start = ns_via_double(ts)
            spans.setdefault((str(pid), str(tid)), []).append((start, start + ns_via_double(dur), name))
            used_threads.add((str(pid), str(tid)))
        elif ph == "C":
            args = e.get("args")
            if not isinstance(args, dict) or not args:
                bad("counter %r at %s has no values" % (name, ts))
            else:
                for k, v in args.items():
                    if not _is_number(v) or not math.isfinite(float(v)):
                        bad("counter %r series %r holds %r: counters must be finite numbers (catapult draws "
                            "the track flat)" % (name, k, v))
        elif ph in ("i", "I"):
            scope = e.get("s", "t")
            if scope == "g":
                globals_seen.append(name)
            if scope == "t":
                used_threads.add((str(pid), str(tid)))
        elif ph in ("s", "f"):
            used_threads.add((str(pid), str(tid)))

    for pid in sorted(used_pids):
        label = process_names.get(pid)
        if not label:
            bad("process %s has events but no process_name" % pid)
        elif "(pid " in label:
            bad("process %s's name %r repeats the pid (the viewers add it)" % (pid, label))
    for pt in sorted(used_threads):
        if pt not in thread_names:
            bad("thread %s of process %s has events but no thread_name" % (pt[1], pt[0]))
    if merged:
        if len(globals_seen) > 1 or any(not str(n).startswith("nantrace: the fault began here") for n in globals_seen):
            bad("the merged trace's only global instant is the fault marker; found %s" % globals_seen)
    elif globals_seen:
        bad("global instants in a per-process trace (drawn across other ranks' tracks once merged): %s"
            % globals_seen)

    # Exact nesting, in Perfetto's ns: sorted by start (longest first), each span either nests
    # inside the innermost open one or starts at or after its end.
    for (pid, tid), lst in spans.items():
        lst.sort(key=lambda s: (s[0], -s[1]))
        stack = []
        for start, end, name in lst:
            while stack and stack[-1][1] <= start:
                stack.pop()
            if stack and end > stack[-1][1]:
                bad("on thread %s of process %s, %r [%d, %d] ns partially overlaps %r [%d, %d]"
                    % (tid, pid, name, start, end, stack[-1][2], stack[-1][0], stack[-1][1]))
                continue
            stack.append((start, end, name))
    return problems


def check_file(path, finished=True, rank=None, merged=False):
    return check_text(read_text(path), finished, rank=rank, merged=merged, where=path)


def steps_of(events):
    """The ProfilerStep numbers of each process: {pid: [1, 2, ...]}."""
    out = {}
    for e in events:
        n = str(e.get("name", ""))
        if e.get("ph") == "X" and n.startswith("ProfilerStep#"):
            out.setdefault(e.get("pid"), []).append(int(n.split("#", 1)[1]))
    return {k: sorted(v) for k, v in out.items()}


def hta_load(rank_to_file, trace_dir):
    """Loads traces with Holistic Trace Analysis exactly as a user would (TraceAnalysis with a
    rank -> file map) and returns {rank: sorted ProfilerStep numbers it found}. Raises what HTA
    raises."""
    import logging
    logging.getLogger("hta").setLevel(logging.ERROR)
    from hta.trace_analysis import TraceAnalysis  # noqa: E402 (optional test dependency)
    analyzer = TraceAnalysis(trace_files=rank_to_file, trace_dir=trace_dir)
    out = {}
    for rank in analyzer.t.get_ranks():
        df = analyzer.t.get_trace(rank)
        names = analyzer.t.symbol_table.get_sym_table()
        steps = set()
        for idx in df["name"].unique():
            n = names[idx] if isinstance(idx, (int,)) or hasattr(idx, "__index__") else idx
            if str(n).startswith("ProfilerStep#"):
                steps.add(int(str(n).split("#", 1)[1]))
        out[int(rank)] = sorted(steps)
    return out
