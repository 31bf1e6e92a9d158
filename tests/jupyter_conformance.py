"""jupyter_kernel_test's conformance suite against the kernelspec named by
$ZEMBED_CONFORMANCE_KERNEL (a launched host or a relay); run by
tests/test_jupyter.py in a process of its own, as the unittest suite it is."""

from __future__ import annotations

import os
import unittest

import jupyter_kernel_test

KERNEL = os.environ.get("ZEMBED_CONFORMANCE_KERNEL", "")


class Conformance(jupyter_kernel_test.KernelTests):
    kernel_name = KERNEL
    language_name = "python"
    file_extension = ".py"
    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('oops', file=sys.stderr)"
    completion_samples = [{"text": "zi", "matches": {"zip"}}]
    complete_code_samples = ["1", "print('hello, world')", "def f(x):\n    return x*2\n\n"]
    incomplete_code_samples = ["print('''hello", "def f(x):\n  x*2"]
    invalid_code_samples = ["import = 7q"]
    code_page_something = "print?"
    code_generate_error = "raise ValueError('boom')"
    code_execute_result = [{"code": "6*7", "result": "42"}]
    code_display_data = [{"code": "from zembed import display; display({'text/html': '<b>x</b>'}, raw=True)",
                          "mime": "text/html"}]  # fmt: skip
    code_history_pattern = "6*7"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = "zip"
    code_clear_output = "from zembed import clear_output; clear_output()"


class Welcome(jupyter_kernel_test.IopubWelcomeTests):
    kernel_name = KERNEL
    support_iopub_welcome = True


if __name__ == "__main__":
    unittest.main()
