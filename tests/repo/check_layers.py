#!/usr/bin/env python3
"""check_layers.py SOURCE_DIR: the checker's layering (docs/checker.md, "Layout").

src/check/ is one engine (src/check/engine/, which knows no object model) and frontends (every
other folder of src/check/: wref/ for the wref runtime, python/ for CPython). From the
#include "..." lines of every file of src/check/, this fails when:
  - an engine file includes a file outside src/check/engine/ and src/common/ (a frontend's
    header, the runtime's internal.h, the public wref.h);
  - an engine file names the wref object model's types (wref_object, wref_type,
    wref__weakref) outside comments: the engine holds type tokens, never objects;
  - a frontend includes another frontend's file;
  - two files include each other, directly or through others (a cycle of files);
  - two modules depend on each other through includes (a cycle of modules; a module is a
    folder's files of one name: report.c, report.h; kinds.c, kinds.h, kinds.def), so a
    header that declares everything for everyone cannot come back.
Angle-bracket includes are system headers and are not followed."""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
MODEL_NAMES = re.compile(r'\b(wref_object|wref_type|wref__weakref)\b')


def strip_comments(text):
    text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
    text = re.sub(r'//[^\n]*', ' ', text)
    return re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', text)


def main():
    root = os.path.realpath(sys.argv[1] if len(sys.argv) > 1 else '.')
    src = os.path.join(root, 'src')
    check = os.path.join(src, 'check')
    engine = os.path.join(check, 'engine')
    common = os.path.join(src, 'common')
    search = [src, os.path.join(root, 'include')]
    files = []
    for d, _, names in os.walk(check):
        files += [os.path.join(d, n) for n in names if n.endswith(('.c', '.h', '.def'))]
    files.sort()
    if not any(f.startswith(engine + os.sep) for f in files):
        print('FAILED: no src/check/engine/ files found under', root)
        return 1

    def rel(p):
        return os.path.relpath(p, root)

    def folder(p):
        return os.path.relpath(os.path.dirname(p), check).split(os.sep)[0]

    def resolve(f, name):
        for base in [os.path.dirname(f)] + search:
            p = os.path.realpath(os.path.join(base, name))
            if os.path.isfile(p):
                return p
        return None

    errors = []
    graph = {}
    for f in files:
        with open(f, encoding='utf-8', errors='replace') as fh:
            text = fh.read()
        graph[f] = []
        for name in INCLUDE.findall(text):
            p = resolve(f, name)
            if p is None:
                errors.append(f'{rel(f)}: #include "{name}" names no file')
                continue
            graph[f].append(p)
            inside = lambda d: p.startswith(d + os.sep)
            if f.startswith(engine + os.sep):
                if not (inside(engine) or inside(common)):
                    errors.append(f'{rel(f)}: the engine includes {rel(p)} (only src/check/engine/ and src/common/ allowed)')
            elif inside(check) and folder(p) not in ('engine', folder(f)):
                errors.append(f'{rel(f)}: frontend {folder(f)}/ includes another frontend\'s {rel(p)}')
        if f.startswith(engine + os.sep):
            for m in MODEL_NAMES.finditer(strip_comments(text)):
                errors.append(f'{rel(f)}: the engine names the object model\'s {m.group(1)}')
                break

    def find_cycle(nodes, edges):
        """A cycle of the graph as a list of nodes, or None (iterative DFS, three colours)."""
        colour = {n: 0 for n in nodes}
        for start in nodes:
            if colour[start]:
                continue
            stack = [(start, iter(edges.get(start, ())))]
            path = [start]
            colour[start] = 1
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    colour[node] = 2
                    stack.pop()
                    path.pop()
                elif nxt in colour and colour[nxt] == 1:
                    return path[path.index(nxt):] + [nxt]
                elif nxt in colour and colour[nxt] == 0:
                    colour[nxt] = 1
                    stack.append((nxt, iter(edges.get(nxt, ()))))
                    path.append(nxt)
        return None

    in_check = {f: [p for p in graph[f] if p in graph] for f in graph}
    cyc = find_cycle(sorted(in_check), in_check)
    if cyc:
        errors.append('include cycle of files: ' + ' -> '.join(rel(p) for p in cyc))

    def module(p):
        return os.path.join(os.path.dirname(p), os.path.basename(p).split('.')[0])

    mod_edges = {}
    for f, targets in in_check.items():
        for p in targets:
            if module(p) != module(f):
                mod_edges.setdefault(module(f), set()).add(module(p))
    mods = sorted({module(f) for f in graph})
    cyc = find_cycle(mods, {m: sorted(e) for m, e in mod_edges.items()})
    if cyc:
        errors.append('include cycle of modules: ' + ' -> '.join(rel(m) for m in cyc))

    if errors:
        print('FAILED: the checker\'s layering (docs/checker.md, "Layout"):')
        for e in errors:
            print('  ' + e)
        return 1
    n_engine = sum(f.startswith(engine + os.sep) for f in files)
    print(f'ok: {len(files)} files of src/check ({n_engine} in the engine), {len(mods)} modules, '
          f'{sum(len(v) for v in in_check.values())} includes: no engine file includes a frontend, the '
          'runtime or wref.h; no include cycle of files or modules')
    return 0


if __name__ == '__main__':
    sys.exit(main())
