"""jupyter_kernel_test (the Jupyter project's kernel conformance suite) on every Sense kernel.

Run by test/integration/conformance.test.ts with the project's own .venv, whose kernelspecs are
the ones scripts/setup.sh registered. Samples are the project's own.
"""
import unittest

import jupyter_kernel_test as jkt

JS_SAMPLES = dict(
    code_hello_world='console.log("hello, world")',
    code_stderr='console.error("to stderr")',
    completion_samples=[{"text": "Math.flo", "matches": {"floor"}}],
    complete_code_samples=["1 + 1", "function f() { return 1; }", "%sense_workers"],
    incomplete_code_samples=["function f() {", "const a = [1,"],
    code_generate_error='throw new Error("boom")',
    code_execute_result=[{"code": "6 * 7", "result": "42"}, {"code": '"a" + "b"', "result": "'ab'"}, {"code": "[1, 2]", "result": "[ 1, 2 ]"}],
    code_display_data=[{"code": 'display({ "text/html": "<b>x</b>", "text/plain": "x" })', "mime": "text/html"}],
    code_history_pattern="6 ? 7",
    supported_history_operations=("tail", "range", "search"),
    code_inspect_sample="Math",
    code_clear_output="clearOutput()",
)


class SenseTs(jkt.KernelTests):
    kernel_name = "sense-ts"
    language_name = "typescript"
    file_extension = ".ts"
    code_hello_world = 'console.log("hello, world")'
    code_stderr = 'console.error("to stderr")'
    completion_samples = [{"text": "Math.flo", "matches": {"floor"}}]
    complete_code_samples = ["const a: number = 1;", "function f(): number { return 1; }", "%sense_workers"]
    incomplete_code_samples = ["function f() {", "const a: number[] = [1,"]
    invalid_code_samples = ["const = 1;"]
    # A type error is an error too: the compile error is the one output.
    code_generate_error = 'const n: number = "not a number";'
    code_execute_result = [{"code": "6 * 7", "result": "42"}, {"code": 'const s: string = "a" + "b";\ns', "result": "'ab'"}]
    code_display_data = [
        {"code": 'import * as tslab from "tslab";\ntslab.display.html("<b>x</b>");', "mime": "text/html"},
        {"code": 'display({ "text/html": "<i>y</i>", "text/plain": "y" });', "mime": "text/html"},
    ]
    code_history_pattern = "6 ? 7"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = "Math.floor"
    code_clear_output = "clearOutput();"


class SenseJs(jkt.KernelTests):
    kernel_name = "sense-js"
    language_name = "javascript"
    file_extension = ".js"
    invalid_code_samples = []
    locals().update(JS_SAMPLES)


class SenseFast(jkt.KernelTests):
    kernel_name = "sense-fast"
    language_name = "javascript"
    file_extension = ".js"
    invalid_code_samples = ["const = 1;"]
    locals().update(JS_SAMPLES)


if __name__ == "__main__":
    unittest.main(verbosity=2)
