#!/usr/bin/env -S python3.11 -I
"""Recognised as CPython through /usr/bin/env and its options (python.shebang.env)."""
print("env python")
