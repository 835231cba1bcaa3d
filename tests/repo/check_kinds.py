#!/usr/bin/env python3
"""check_kinds.py SOURCE_DIR: the finding kinds are one table (src/check/engine/kinds.def).

Fails when docs/report-schema.json's $defs.kind enum does not list exactly the table's kind
names in the table's order, when a row's severity is not error or warning, or when two rows
share a name or a SARIF rule name. The checker (report.c, json.c) and the report tool
(tools/report/model.c) compile the table itself, so the schema is the one copy to check."""
import json
import os
import re
import sys

ROW = re.compile(r'^WREF__KIND\(\s*(\w+)\s*,\s*"([^"]*)"\s*,\s*"([^"]*)"\s*,\s*([01])\s*,\s*"([^"]*)"', re.M)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else '.'
    with open(os.path.join(root, 'src/check/engine/kinds.def'), encoding='utf-8') as f:
        rows = ROW.findall(f.read())
    with open(os.path.join(root, 'docs/report-schema.json'), encoding='utf-8') as f:
        schema = json.load(f)
    errors = []
    if not rows:
        errors.append('kinds.def: no WREF__KIND row found')
    names = [r[1] for r in rows]
    enum = schema['$defs']['kind']['enum']
    if enum != names:
        errors.append(f'docs/report-schema.json $defs.kind.enum {enum} != kinds.def {names}')
    for what, col in (('name', 1), ('rule', 2), ('ID', 0)):
        seen = [r[col] for r in rows]
        dup = sorted({x for x in seen if seen.count(x) > 1})
        if dup:
            errors.append(f'kinds.def: {what} used twice: {dup}')
    for r in rows:
        if r[4] not in ('error', 'warning'):
            errors.append(f'kinds.def: {r[1]}: severity {r[4]!r} is neither error nor warning')
    once_late = [r[1] for i, r in enumerate(rows) if r[3] == '1' and i >= 8]
    if once_late:
        errors.append(f'kinds.def: reported-once kinds beyond the first 8 (8-bit record field): {once_late}')
    if errors:
        print('FAILED: the finding kinds:')
        for e in errors:
            print('  ' + e)
        return 1
    print(f'ok: {len(rows)} kinds in kinds.def, the schema lists the same in the same order')
    return 0


if __name__ == '__main__':
    sys.exit(main())
