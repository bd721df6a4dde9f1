#!/usr/bin/env python3
"""The module graph of src/ from the code's own `crate::` paths, and its cycles.

    python3 tools/modgraph.py            # top-level modules: edges and cycles
    python3 tools/modgraph.py --depth 2  # one level further (e.g. notify::dispatch)
    python3 tools/modgraph.py --check    # exit 1 when top-level modules form a cycle
    python3 tools/modgraph.py --no-tests # the library as shipped: `#[cfg(test)]` code left out

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


CFG_TEST = re.compile(r"^\s*#\[cfg\(test\)\]\s*$")
MOD_INLINE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*\{")
MOD_FILE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*;")


def strip_tests(lines, rel, skipped):
    """Drops `#[cfg(test)]` modules (inline by brace depth, or out of line:
    their file is added to `skipped`)."""
    out, i = [], 0
    while i < len(lines):
        if CFG_TEST.match(lines[i]):
            j = i + 1
            while j < len(lines) and lines[j].lstrip().startswith("#["):
                j += 1
            if j < len(lines) and MOD_FILE.match(lines[j]):
                name = MOD_FILE.match(lines[j]).group(1)
                parts = rel[:-3].split(os.sep)
                base = parts[:-1] if parts[-1] in ("mod", "lib", "main") else parts
                for cand in (os.path.join(*base, name + ".rs"), os.path.join(*base, name, "mod.rs")):
                    skipped.add(cand)
                i = j + 1
                continue
            if j < len(lines) and MOD_INLINE.match(lines[j]):
                depth, k = 0, j
                while k < len(lines):
                    depth += lines[k].count("{") - lines[k].count("}")
                    k += 1
                    if depth <= 0:
                        break
                i = k
                continue
        out.append(lines[i])
        i += 1
    return out


def graph(depth, no_tests=False):
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
    texts, skipped = {}, set()
    for f in files:
        with open(os.path.join(ROOT, f), encoding="utf-8") as fh:
            lines = [l for l in fh.read().splitlines() if not l.lstrip().startswith("//")]
        texts[f] = strip_tests(lines, f, skipped) if no_tests else lines
    for f in files:
        src = module_of(f, depth)
        if src == "crate" or f in skipped:
            continue
        text = "\n".join(texts[f])
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
    ap.add_argument("--no-tests", action="store_true", help="leave out #[cfg(test)] modules")
    a = ap.parse_args()
    nodes, edges = graph(a.depth, a.no_tests)
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
