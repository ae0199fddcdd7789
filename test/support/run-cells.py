"""Runs a notebook's code cells on a kernel with jupyter_client (no Jupyter Server) and prints,
as JSON, every cell's output text: each iopub message is given to the cell it is parented to,
also when it arrives after that cell's `idle` (Deno's kernel 2.9 sends some output after it; a
front end such as nbclient or JupyterLab drops that). The run ends once a last `kernel_info`
request is answered and idle: output of the cells before it has arrived by then.

usage: run-cells.py NOTEBOOK KERNEL_NAME
"""
import json
import os
import sys

from jupyter_client.manager import KernelManager


def text_of(msg):
    t, c = msg["msg_type"], msg["content"]
    if t == "stream":
        return c.get("text", "")
    if t in ("display_data", "update_display_data", "execute_result"):
        return str(c.get("data", {}).get("text/plain", "")) + "\n"
    if t == "error":
        return "\n".join(c.get("traceback", [])) + "\n"
    return ""


def main():
    path, kernel = sys.argv[1], sys.argv[2]
    nb = json.load(open(path))
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    km = KernelManager(kernel_name=kernel)
    km.start_kernel(cwd=os.path.dirname(os.path.abspath(path)))
    kc = km.client()
    kc.start_channels()
    out = {}
    errors = []
    try:
        kc.wait_for_ready(timeout=120)

        def pump(until_id):
            """Reads iopub until the request `until_id` is idle, filing every message by parent."""
            while True:
                m = kc.get_iopub_msg(timeout=300)
                pid = m["parent_header"].get("msg_id")
                if pid in out:
                    out[pid].append(text_of(m))
                    if m["msg_type"] == "error":
                        errors.append(pid)
                if pid == until_id and m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                    return

        ids = []
        for src in cells:
            mid = kc.execute(src, stop_on_error=True)
            out[mid] = []
            ids.append(mid)
            pump(mid)
            reply = kc.get_shell_msg(timeout=300)
            if reply["content"]["status"] != "ok":
                errors.append(mid)
                break
        last = kc.kernel_info()
        out[last] = []
        pump(last)
        print(json.dumps({"cells": ["".join(out[i]) for i in ids], "failed": len(errors) > 0}))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


if __name__ == "__main__":
    main()
