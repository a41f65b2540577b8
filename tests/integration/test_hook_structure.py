"""The hook modules' structure (issue 10, "one owner for the investigation"), read statically:
- no import circle among nantrace_torch's modules (module-level and function-level imports);
- no module assigns another module's globals (`_modules._replayed = True`): state belongs to
  its owner, the others call its functions;
- the investigation's state lives in _investigation only.
Fails with one line per problem."""
import ast
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.join(os.path.dirname(os.path.dirname(HERE)), "injector", "python", "nantrace_torch")

modules = {n[:-3]: os.path.join(PKG, n) for n in os.listdir(PKG) if n.endswith(".py")}
imports, problems = {}, []
for name, path in modules.items():
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    deps, aliases = set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:  # from ._x import y
                deps.add(node.module)
            else:  # from . import _x as A
                for a in node.names:
                    deps.add(a.name)
                    aliases[a.asname or a.name] = a.name
    imports[name] = {d for d in deps if d in modules and d != name}
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AugAssign, ast.AnnAssign)) else []
        for t in targets:
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id in aliases:
                owner = aliases[t.value.id]
                if owner in modules and not (owner == "_runtime" and t.attr in ("api", "tls")):
                    problems.append("%s.py:%d assigns %s.%s (another module's state)" % (name, t.lineno, owner, t.attr))

# Cycles, by depth-first search.
state = {}


def visit(n, trail):
    state[n] = "open"
    for d in sorted(imports[n]):
        if state.get(d) == "open":
            problems.append("import circle: " + " -> ".join(trail[trail.index(d):] + [d]))
        elif d not in state:
            visit(d, trail + [d])
    state[n] = "done"


for n in sorted(imports):
    if n not in state:
        visit(n, [n])
for owned in ("_replayed", "_evidence_left", "culprit", "_op_mode"):
    for name, path in modules.items():
        if name == "_investigation":
            continue
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == owned for t in node.targets):
                problems.append("%s.py keeps investigation state %s (it belongs to _investigation)" % (name, owned))
if len(modules) < 10:
    problems.append("only %d modules found in %s" % (len(modules), PKG))
if problems:
    print("FAIL:\n  " + "\n  ".join(problems))
    sys.exit(1)
print("ok: %d hook modules, no import circle, no module writes another's state" % len(modules))
