#!/usr/bin/env python3
"""The module graph of src/ from the code's own `crate::` paths, and its cycles.

    python3 tools/modgraph.py            # top-level modules: edges and cycles
    python3 tools/modgraph.py --depth 2  # one level further (e.g. notify::dispatch)
    python3 tools/modgraph.py --check    # exit 1 when top-level modules form a cycle

An edge A -> B means some file under src/A names `crate::B` (in a `use`, a
path in code, or a doc link is skipped: lines starting with `//` are ignored).
`super::` paths stay inside their module and add no edge. Cycles are the
strongly connected components with more than one member (Tarjan).
"""
import argparse
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
PATH = re.compile(r"\bcrate::((?:[a-z_][a-z0-9_]*)(?:::[a-z_][a-z0-9_]*)*)")
USE_GROUP = re.compile(r"\bcrate::\{([^}]*)\}", re.S)


def module_of(rel, depth):
    parts = rel[:-3].split(os.sep)  # strip .rs
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return "::".join(parts[:depth]) if parts else "crate"


def target_of(path, depth, modules):
    parts = path.split("::")
    for d in range(min(depth, len(parts)), 0, -1):
        cand = "::".join(parts[:d])
        if cand in modules:
            return cand
    return None


def graph(depth):
    files = []
    for dirpath, _, names in os.walk(ROOT):
        for n in names:
            if n.endswith(".rs"):
                files.append(os.path.relpath(os.path.join(dirpath, n), ROOT))
    modules = {module_of(f, depth) for f in files}
    # Directories that exist only as parents count as modules too.
    for f in files:
        parts = f[:-3].split(os.sep)
        for d in range(1, min(depth, len(parts)) + 1):
            modules.add("::".join(parts[:d]) if parts[d - 1] not in ("mod",) else None)
    modules.discard(None)
    edges = {}
    for f in files:
        src = module_of(f, depth)
        if src == "crate":
            continue
        with open(os.path.join(ROOT, f), encoding="utf-8") as fh:
            text = "\n".join(l for l in fh.read().splitlines() if not l.lstrip().startswith("//"))
        paths = PATH.findall(text)
        for group in USE_GROUP.findall(text):
            for item in re.split(r"[,\s]+", group):
                item = item.strip()
                if item and item[0].isalpha():
                    paths.append(item.split("::{")[0])
        for p in paths:
            dst = target_of(p, depth, modules)
            if dst and dst != src and not dst.startswith(src + "::") and not src.startswith(dst + "::"):
                edges.setdefault(src, {}).setdefault(dst, set()).add(f)
    return modules, edges


def cycles(nodes, edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=1)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--edges", action="store_true", help="print every edge with the files behind it")
    a = ap.parse_args()
    nodes, edges = graph(a.depth)
    comps = cycles(nodes, edges)
    if a.edges:
        for s in sorted(edges):
            for d in sorted(edges[s]):
                print(f"{s} -> {d}    ({', '.join(sorted(edges[s][d])[:3])}{' …' if len(edges[s][d]) > 3 else ''})")
    for c in comps:
        inside = set(c)
        print("cycle:", " ".join(c))
        for s in c:
            for d in sorted(edges.get(s, {})):
                if d in inside:
                    print(f"  {s} -> {d}: {', '.join(sorted(edges[s][d])[:4])}")
    if not comps:
        print(f"no cycle among {len(nodes)} modules at depth {a.depth}")
    sys.exit(1 if a.check and comps else 0)


if __name__ == "__main__":
    main()
