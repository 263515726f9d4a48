#!/usr/bin/env python3
"""Import layering of a Rust crate: which source files use which, and any circles among them.

Usage: python3 .ci/layers.py [SRC_DIR]      (default: src; .ci/run runs it from the repository root)

Reads `use crate::...`, `crate::a::b` paths and `super::` paths in every .rs file under SRC_DIR
(each file's `#[cfg(test)] mod ...` block at the end is left out: tests may reach anywhere) and
maps each to the file that defines it (`a/b.rs`, else `a/b/mod.rs`, else the nearest parent
module). It prints the files in layers (a file stands above everything it uses), every circle
(a set of files that use each other, directly or round about), and exits 1 when there is one.
A folder's mod.rs that only declares and re-exports its children is not a circle with them:
edges from a child to its own mod.rs are reported apart, not counted.
"""
import os
import re
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "src"
files = {}
for root, _, names in os.walk(src):
    for n in names:
        if n.endswith(".rs"):
            p = os.path.relpath(os.path.join(root, n), src)
            files[p] = open(os.path.join(root, n), encoding="utf-8", errors="replace").read()


def module_of(path):
    """src-relative file -> module path list (lib.rs/main.rs -> [])."""
    parts = path[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def file_of(mod):
    """module path -> the defining file, walking up to the nearest existing module."""
    while mod:
        for cand in (os.sep.join(mod) + ".rs", os.sep.join(mod + ["mod"]) + ".rs"):
            if cand in files:
                return cand
        mod = mod[:-1]
    return None


def strip_tests(text):
    m = re.search(r"#\[cfg\(test\)\]\s*(pub\s+)?mod\s+\w+\s*\{", text)
    return text[: m.start()] if m else text


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e'] (a simple brace expander)."""
    tree = re.sub(r"\s+", "", tree)
    m = re.search(r"\{", tree)
    if not m:
        return [tree]
    head, depth, i = tree[: m.start()], 0, m.start()
    for j in range(i, len(tree)):
        if tree[j] == "{":
            depth += 1
        elif tree[j] == "}":
            depth -= 1
            if depth == 0:
                inner, tail = tree[i + 1 : j], tree[j + 1 :]
                break
    else:
        return [head]
    items, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    items.append(cur)
    out = []
    for it in items:
        if it:
            out += [head + e + tail for e in expand_use(it)]
    return out


edges, child_to_parent = {}, set()
for path, text in files.items():
    here = module_of(path)
    body = strip_comments(strip_tests(text))
    children = set(re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", body, flags=re.M))
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", body):
        paths += expand_use(m.group(1))
    paths += re.findall(r"\b((?:crate|super)(?:::\w+)+)", body)
    if children:
        paths += re.findall(r"(?<![:\w])((?:%s)(?:::\w+)+)" % "|".join(sorted(children)), body)
    for p in paths:
        segs = [s for s in p.split("::") if s and s != "self"]
        if not segs:
            continue
        if segs[0] == "crate":
            target = segs[1:]
        elif segs[0] == "super":
            base = here[:-1]
            segs = segs[1:]
            while segs and segs[0] == "super":
                base, segs = base[:-1], segs[1:]
            target = base + segs
        elif segs[0] in children:
            target = here + segs
        else:
            continue
        f = file_of(target)
        if not f or f == path or f in ("lib.rs", "main.rs"):
            continue
        if module_of(f) == here[:-1] and os.path.basename(f) == "mod.rs":
            child_to_parent.add((path, f))
            continue
        edges.setdefault(path, set()).add(f)

# Tarjan's strongly connected components
index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in edges.get(v, ()):
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
        comps.append(comp)


for v in sorted(files):
    if v not in index:
        visit(v)

circles = [sorted(c) for c in comps if len(c) > 1]
comp_of = {v: i for i, c in enumerate(comps) for v in c}
level = {}


def lvl(i):
    if i in level:
        return level[i]
    level[i] = 0
    below = {comp_of[w] for v in comps[i] for w in edges.get(v, ()) if comp_of[w] != i}
    level[i] = 1 + max((lvl(j) for j in below), default=-1)
    return level[i]


for i in range(len(comps)):
    lvl(i)
by_level = {}
for i, c in enumerate(comps):
    by_level.setdefault(level[i], []).extend(c)
print("layers (a file uses only files on lower layers, or its circle):")
for L in sorted(by_level, reverse=True):
    print(f"  {L:2d}  " + "  ".join(sorted(by_level[L])))
if child_to_parent:
    print(f"child -> own mod.rs (not counted): {len(child_to_parent)}")
for c in circles:
    print(f"circle of {len(c)}: " + ", ".join(c))
    for v in c:
        for w in sorted(edges.get(v, ())):
            if w in c:
                print(f"    {v} -> {w}")
print(f"layering: {len(files)} files, {sum(len(s) for s in edges.values())} uses, {len(circles)} circle(s)")
sys.exit(1 if circles else 0)
