"""Runs a notebook with nbclient and allow_errors=True (what `jupyter nbconvert --execute
--allow-errors` does) on one Sense kernel, saves the executed notebook, and prints its outputs as
JSON. Used by test/integration/conformance.test.ts.

usage: allow_errors.py KERNEL OUT.ipynb
"""
import json
import sys

import nbformat
from nbclient import NotebookClient

kernel, out = sys.argv[1], sys.argv[2]
typed = kernel == "sense-ts"
cells = [
    'const base = 40;\nconsole.log("first");\nbase + 1' if typed else 'var base = 40;\nconsole.log("first");\nbase + 1',
    'throw new Error("runtime failure");',
    'console.log("after a runtime error");\nbase + 2',
    'const wrong: string = base;' if typed else 'JSON.parse("{bad");',
    'console.log("after a second error");\nbase + 3',
    "%no_such_magic",
    'console.log("after a magic error");\nbase + 4',
]
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "typescript" if typed else "javascript"}
NotebookClient(nb, timeout=120, kernel_name=kernel, allow_errors=True, startup_timeout=120).execute()
nbformat.write(nb, out)
saved = nbformat.read(out, as_version=4)
print(json.dumps([{"count": c.execution_count, "outputs": c.outputs} for c in saved.cells]))
