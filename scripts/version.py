#!/usr/bin/env python3
"""One version for every crate and package, set in one place.

    scripts/version.py            # print the version
    scripts/version.py check      # exit 1 (listing them) when a package disagrees
    scripts/version.py set 0.2.0  # write a new version everywhere

The one place is `[workspace.package] version` in the root Cargo.toml. Every crate inherits
it (`version.workspace = true`), the Python package reads it through maturin
(`dynamic = ["version"]`), and the files below carry a copy that `set` rewrites and `check`
compares: the npm package, the Maven project and the projects that depend on them, and the
workspace's path dependencies.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")

# (file, regex whose group 1 is the version, what it is)
COPIES: list[tuple[str, str, str]] = [
    ("node/package.json", r'^  "version": "([^"]+)"', "npm package"),
    ("kotlin/pom.xml", r"<artifactId>stan-client</artifactId>\s*<version>([^<]+)</version>", "Maven project"),
    ("examples/kotlin/pom.xml", r"<artifactId>stan-client</artifactId>\s*<version>([^<]+)</version>", "Kotlin examples' dependency"),
    ("examples/kotlin/benchmark/pom.xml", r"<artifactId>stan-client</artifactId>\s*<version>([^<]+)</version>", "Kotlin benchmark's dependency"),
    ("integration/runner-kotlin/pom.xml", r"<artifactId>stan-client</artifactId>\s*<version>([^<]+)</version>", "Kotlin runner's dependency"),
]

# Crates inherit the workspace version; path dependencies name it too.
CARGO_DEPS = r'^(stan-[a-z-]+) = \{ path = "[^"]+", version = "([^"]+)" \}'


def workspace_version() -> str:
    text = (ROOT / "Cargo.toml").read_text()
    section = text.split("[workspace.package]", 1)[1].split("\n[", 1)[0]
    m = re.search(r'^version = "([^"]+)"', section, re.M)
    if not m:
        sys.exit("Cargo.toml: no [workspace.package] version")
    return m.group(1)


def found(path: str, pattern: str) -> list[re.Match[str]]:
    text = (ROOT / path).read_text()
    return list(re.finditer(pattern, text, re.M))


def check() -> int:
    want = workspace_version()
    bad = []
    for path, pattern, what in COPIES:
        if not (ROOT / path).exists():
            continue
        matches = found(path, pattern)
        if not matches:
            bad.append(f"{path}: no version found ({what})")
        bad += [f"{path}: {m.group(1)} ({what})" for m in matches if m.group(1) != want]
    for m in found("Cargo.toml", CARGO_DEPS):
        if m.group(2) != want:
            bad.append(f"Cargo.toml: {m.group(1)} path dependency {m.group(2)}")
    for cargo in sorted(ROOT.glob("**/Cargo.toml")):
        rel = cargo.relative_to(ROOT)
        # node/rust is a copy made by npm pack; fuzz/ is outside the workspace and never released.
        if rel.parts[0] in ("target", "node", "fuzz") or "node_modules" in rel.parts or rel == Path("Cargo.toml"):
            continue
        text = cargo.read_text()
        if "[package]" in text and "version.workspace = true" not in text:
            bad.append(f"{rel}: does not inherit the workspace version")
    if bad:
        print(f"version {want} (Cargo.toml [workspace.package]); these disagree:")
        for line in bad:
            print(f"  {line}")
        return 1
    print(f"version {want}: every crate and package agrees")
    return 0


def set_version(new: str) -> int:
    if not SEMVER.match(new):
        sys.exit(f"not a version: {new!r} (want MAJOR.MINOR.PATCH[-PRE])")
    old = workspace_version()

    def swap(path: str, pattern: str) -> None:
        file = ROOT / path
        text = file.read_text()

        def repl(m: re.Match[str]) -> str:
            s, e = m.span(1)
            return m.group(0)[: s - m.start()] + new + m.group(0)[e - m.start() :]

        file.write_text(re.sub(pattern, repl, text, flags=re.M))

    swap("Cargo.toml", r'\[workspace\.package\]\nversion = "([^"]+)"')
    swap("Cargo.toml", r'^stan-[a-z-]+ = \{ path = "[^"]+", version = "([^"]+)" \}')
    for path, pattern, _ in COPIES:
        if (ROOT / path).exists():
            swap(path, pattern)
    print(f"{old} -> {new}; run cargo update -w to refresh Cargo.lock")
    return check()


def main(argv: list[str]) -> int:
    if not argv:
        print(workspace_version())
        return 0
    if argv == ["check"]:
        return check()
    if len(argv) == 2 and argv[0] == "set":
        return set_version(argv[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
