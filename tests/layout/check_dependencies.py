#!/usr/bin/env python3
"""The dependency rule, checked: the links between ndrguard's own targets (and from each to
third-party libraries) must be exactly those README.md lists under "Dependencies", so that the
layout a newcomer reads is the one CMake builds, and a new link (say, the detector on Boost) is
a visible change to the README.
usage: check_dependencies.py SOURCE_DIR SCRATCH_DIR
Configures SOURCE_DIR in SCRATCH_DIR with --graphviz and compares its edges with the README's."""
import os
import re
import shutil
import subprocess
import sys

source, scratch = sys.argv[1], sys.argv[2]
OURS = re.compile(r"^ndrguard(_[a-z_]+)?$")


def readme_edges():
    with open(os.path.join(source, "README.md"), encoding="utf-8") as f:
        text = f.read()
    block = re.search(r"<!-- dependencies -->\n```\n(.*?)```", text, re.S)
    if not block:
        sys.exit("README.md has no <!-- dependencies --> block")
    edges, targets = set(), set()
    for line in block.group(1).splitlines():
        if "->" not in line:
            continue
        target, deps = line.split("->", 1)
        targets.add(target.strip())
        for dep in deps.split():
            edges.add((target.strip(), dep.strip()))
    return edges, targets


def cmake_edges():
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    dot = os.path.join(scratch, "targets.dot")
    run = subprocess.run(["cmake", "-S", source, "-B", os.path.join(scratch, "b"), "-DNDRGUARD_TESTS=OFF",
                          "--graphviz=" + dot], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit("cmake failed:\n" + run.stdout + run.stderr)
    edges, targets = set(), set()
    with open(dot, encoding="utf-8") as f:
        for line in f:
            node = re.search(r'\[ label = "(ndrguard[a-z_]*)"', line)
            if node and node.group(1) != "ndrguard_warnings":
                targets.add(node.group(1))
            m = re.search(r"// (\S+) -> (\S+)$", line.strip())
            if m and OURS.match(m.group(1)) and m.group(2) != "ndrguard_warnings" and m.group(1) != "ndrguard_warnings":
                edges.add((m.group(1), m.group(2)))
    return edges, targets


(documented, documented_targets), (built, built_targets) = readme_edges(), cmake_edges()
for t in sorted(built_targets - documented_targets):
    print("target not in README: " + t)
for t in sorted(documented_targets - built_targets):
    print("in README but no such target: " + t)
for a, b in sorted(built - documented):
    print("not in README: %s -> %s" % (a, b))
for a, b in sorted(documented - built):
    print("in README but not linked: %s -> %s" % (a, b))
if built != documented or built_targets != documented_targets:
    sys.exit(1)
print("%d targets and %d links, as README.md lists them" % (len(built_targets), len(built)))
