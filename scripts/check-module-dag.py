#!/usr/bin/env python3
"""Checks that a crate's modules import each other without cycles.

    scripts/check-module-dag.py CRATE_SRC_DIR [--depth N] [--quiet]

Every `crate::a::b` / `super::x` / `self::x` path in a module's files is an import of the
module it names, cut to DEPTH path segments (default 1: top-level modules such as
`crate::connection`; 2 also tells `connection::publish` from `connection::session`).
A module's own submodules and ancestors do not count as imports (a parent owns its
children; a child may use what its parent defines). Prints each cycle and exits 1 if
there is one; otherwise prints the module graph (only its summary line with --quiet) and
exits 0.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PATH_RE = re.compile(r"\b(crate|super|self)((?:::\w+)+|::\{)")
GROUP_RE = re.compile(r"\b(crate|super|self)::\{")


def module_of(src: Path, file: Path) -> list[str]:
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def strip_comments(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def cfg_test_removed(text: str) -> str:
    """Drops `#[cfg(test)] mod x { ... }` blocks: test modules may import anything."""
    out = []
    i = 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth = 0
        j = m.end() - 1
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        i = j + 1
    out.append(text[i:])
    return "".join(out)


def group_items(text: str, start: int) -> list[str]:
    """Top-level names of a `{a, b::c, d::{e}}` group starting at text[start] == '{'."""
    depth = 0
    cur = ""
    items = []
    for ch in text[start:]:
        if ch == "{":
            depth += 1
            if depth == 1:
                continue
        elif ch == "}":
            depth -= 1
            if depth == 0:
                items.append(cur)
                break
        if depth == 1 and ch == ",":
            items.append(cur)
            cur = ""
        elif depth >= 1:
            cur += ch
    return [re.split(r"::|\s", i.strip())[0] for i in items if i.strip()]


def resolve(mod: list[str], head: str, rest: list[str]) -> list[str]:
    if head == "crate":
        return rest
    base = list(mod)
    if head == "super":
        base = base[:-1]
        while rest and rest[0] == "super":
            base = base[:-1]
            rest = rest[1:]
    return base + rest


def main() -> int:
    args = sys.argv[1:]
    depth = 1
    quiet = "--quiet" in args
    args = [a for a in args if a != "--quiet"]
    if "--depth" in args:
        i = args.index("--depth")
        depth = int(args[i + 1])
        del args[i : i + 2]
    src = Path(args[0])
    files = sorted(src.rglob("*.rs"))
    modules = {tuple(module_of(src, f)[:depth]) for f in files}
    # Items re-exported at the crate root (`pub use a::{B, C}` in lib.rs) count as `a`.
    root_items: dict[str, str] = {}
    lib = src / "lib.rs"
    if lib.exists():
        for m in re.finditer(r"pub use (\w+)::(\{[^}]*\}|\w+)", strip_comments(lib.read_text())):
            for item in re.findall(r"\w+", m.group(2)):
                root_items[item] = m.group(1)
    edges: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for f in files:
        mod = module_of(src, f)
        key = tuple(mod[:depth])
        text = cfg_test_removed(strip_comments(f.read_text()))
        targets: list[list[str]] = []
        for m in PATH_RE.finditer(text):
            head, tail = m.group(1), m.group(2)
            if tail == "::{":
                for item in group_items(text, m.end() - 1):
                    targets.append(resolve(mod, head, [item]))
            else:
                targets.append(resolve(mod, head, tail.strip(":").split("::")))
        for t in targets:
            if t and t[0] in root_items:
                t = [root_items[t[0]], *t]
            # Cut to the deepest known module prefix, then to DEPTH.
            while t and tuple(t[:depth]) not in modules and len(t) > 0:
                t = t[:-1]
            tk = tuple(t[:depth])
            if not tk or tk not in modules or tk == key:
                continue
            # Ancestors and descendants are not imports.
            if key[: len(tk)] == tk or tk[: len(key)] == key:
                continue
            edges.setdefault(key, set()).add(tk)
    # Cycle search (Tarjan's strongly connected components).
    index: dict = {}
    low: dict = {}
    stack: list = []
    on: set = set()
    sccs: list = []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
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
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            strong(v)
    name = lambda k: "::".join(k) or "crate"  # noqa: E731
    if sccs:
        for comp in sccs:
            members = set(comp)
            print("cycle:", ", ".join(sorted(name(c) for c in comp)))
            for a in sorted(comp):
                for b in sorted(edges.get(a, ())):
                    if b in members:
                        print(f"  {name(a)} -> {name(b)}")
        return 1
    for a in sorted(edges) if not quiet else []:
        print(f"{name(a)} -> {', '.join(sorted(name(b) for b in edges[a]))}")
    print(f"{src}: {len(modules)} modules, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
