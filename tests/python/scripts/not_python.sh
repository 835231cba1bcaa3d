#!/bin/sh
# A "#!" script that is not CPython: no LD_AUDIT (python.shebang.not_python).
echo "not python"
