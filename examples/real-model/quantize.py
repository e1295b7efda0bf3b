#!/usr/bin/env python3
"""Re-quantise a GGUF file to Q4_0 with llama.cpp's own quantiser, through llama-cpp-python.

    quantize.py SOURCE.gguf DESTINATION.gguf

Runs in the llama venv. Writes DESTINATION only when the quantiser succeeded.
"""

import ctypes
import os
import sys

import llama_cpp


def main():
    source, destination = sys.argv[1], sys.argv[2]
    partial = destination + ".partial"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0
    params.allow_requantize = True
    params.nthread = 1
    code = llama_cpp.llama_model_quantize(
        source.encode(), partial.encode(), ctypes.byref(params)
    )
    if code != 0 or not os.path.exists(partial):
        print(f"llama_model_quantize returned {code}", file=sys.stderr)
        sys.exit(1)
    os.replace(partial, destination)


if __name__ == "__main__":
    main()
