#!/usr/bin/env python3
"""Checks that every #include goes down the library graph, never up or sideways.

The rules are the libraries' own CMake declarations: each folder that holds an
`add_library(sluice_<name> ...)` is one library, and the `sluice_*` targets named in its
`target_link_libraries(...)` are what it may use (and, through them, what those may use). A
source file may include headers of its own library and of the libraries it may use; nothing
else of ours. Static libraries link whatever is named, but a header include needs no link
line: this check is what stops one going the wrong way (as Bazel visibility does for Envoy).

Also refused: a dependency cycle between libraries.

  scripts/check_layers.py            check the repository; exit 1 and print each offence
  scripts/check_layers.py --graph    print the libraries and what each may use
  scripts/check_layers.py --root DIR check another tree (the tests plant offences in a copy)

Only library code is checked: tests/, bench/ and the fuzz targets may include anything.
"""

import argparse
import os
import re
import sys

ADD_LIBRARY = re.compile(r"add_library\(\s*(sluice_\w+)")
LINK = re.compile(r"target_link_libraries\(\s*(sluice_\w+)\s+([^)]*)\)", re.S)
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SOURCE_SUFFIXES = (".h", ".cc")
# Folders that are not libraries of the product (they may use everything).
UNCHECKED = ("tests", "bench", "build", "docker", "conf", "scripts", "cmake", "docs")


def strip_comments(text):
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def find_libraries(root):
    """{target: folder relative to root} and {target: set of sluice_* targets it links}."""
    folders, links = {}, {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        top = rel.split(os.sep)[0]
        if rel != "." and (top in UNCHECKED or top.startswith(".")):
            dirnames[:] = []
            continue
        if "CMakeLists.txt" not in filenames:
            continue
        with open(os.path.join(dirpath, "CMakeLists.txt"), encoding="utf-8") as f:
            text = strip_comments(f.read())
        for target in ADD_LIBRARY.findall(text):
            folders[target] = "" if rel == "." else rel.replace(os.sep, "/")
        for target, body in LINK.findall(text):
            deps = {word for word in body.split() if word.startswith("sluice_")}
            links.setdefault(target, set()).update(deps)
    for target in folders:
        links.setdefault(target, set())
    return folders, links


def closure(links):
    """Everything each library may use, directly or through what it uses; and any cycle."""
    allowed, cycles = {}, []

    def visit(target, path):
        if target in allowed:
            return allowed[target]
        if target in path:
            cycles.append(path[path.index(target):] + [target])
            return set()
        result = set()
        for dep in links.get(target, ()):
            result.add(dep)
            result |= visit(dep, path + [target])
        allowed[target] = result
        return result

    for target in sorted(links):
        visit(target, [])
    return allowed, cycles


def owner(path, folders):
    """The library whose folder holds `path` (the deepest one), or None."""
    best, best_len = None, -1
    for target, folder in folders.items():
        prefix = folder + "/" if folder else ""
        if path.startswith(prefix) and len(prefix) > best_len:
            best, best_len = target, len(prefix)
    return best


def check(root):
    folders, links = find_libraries(root)
    allowed, cycles = closure(links)
    problems = []
    for cycle in cycles:
        problems.append("dependency cycle: " + " -> ".join(cycle))
    for target, deps in sorted(links.items()):
        for dep in sorted(deps):
            if dep not in folders:
                problems.append(f"{target} links {dep}, which no CMakeLists.txt defines")
    for target, folder in sorted(folders.items()):
        base = os.path.join(root, folder)
        for dirpath, dirnames, filenames in os.walk(base):
            rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
            # A subfolder that is a library of its own is checked as that library.
            dirnames[:] = [d for d in dirnames
                           if owner(f"{rel_dir}/{d}/x".lstrip("./"), folders) == target]
            for name in sorted(filenames):
                if not name.endswith(SOURCE_SUFFIXES):
                    continue
                rel = f"{rel_dir}/{name}" if rel_dir != "." else name
                with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                    text = f.read()
                for match in INCLUDE.finditer(text):
                    header = match.group(1)
                    used = owner(header, folders)
                    if used is None or not os.path.exists(os.path.join(root, header)):
                        continue  # not ours (llhttp.h) or generated
                    if used == target or used in allowed[target]:
                        continue
                    line = text.count("\n", 0, match.start()) + 1
                    may = ", ".join(sorted(allowed[target])) or "nothing of ours"
                    problems.append(
                        f"{rel}:{line}: includes \"{header}\" of {used}, but {target} "
                        f"({folder or '.'}/) may use only: {may}")
    return folders, links, problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--graph", action="store_true", help="print the library graph")
    args = parser.parse_args()
    folders, links, problems = check(args.root)
    if args.graph:
        for target in sorted(folders, key=lambda t: folders[t]):
            deps = ", ".join(sorted(links[target])) or "-"
            print(f"{folders[target] or '.'}/ ({target}): {deps}")
    for p in problems:
        print(p)
    if problems:
        print(f"include check: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    if not args.graph:
        print(f"include check: {len(folders)} libraries, every include goes down the graph")
    return 0


if __name__ == "__main__":
    sys.exit(main())
