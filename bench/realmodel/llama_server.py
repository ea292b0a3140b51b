"""Serve one GGUF model with llama.cpp's OpenAI-compatible HTTP server (xllamacpp) on 127.0.0.1.

Run with the interpreter of the venv that holds xllamacpp (bench/realmodel/assets.py makes it):

    python llama_server.py MODEL_PATH PORT CONTEXT_PER_SLOT SLOTS THREADS ALIAS

Prints one line, `ready <url>`, once the server listens, and serves until its standard input closes (the
benchmark holds the pipe, so the server never outlives it). Every server is given the same alias, so the
`model` field of a reply does not tell the models apart: the benchmark measures what the answers reveal.
"""

from __future__ import annotations

import sys

import xllamacpp as xlc  # type: ignore[import-not-found]


def main() -> None:
    path, port, context, slots, threads, alias = sys.argv[1:7]
    params = xlc.CommonParams()
    params.model.path = path
    params.port = int(port)
    params.n_parallel = int(slots)
    params.n_ctx = int(context) * int(slots)  # llama.cpp splits the context between its slots
    params.cpuparams.n_threads = int(threads)
    params.cpuparams_batch.n_threads = int(threads)
    params.no_extra_bufts = True  # = --no-repack: weight repacking crashes on some CPUs here
    params.warmup = False
    try:
        params.model_alias = {alias}
    except TypeError:  # older bindings take one string
        params.model_alias = alias
    server = xlc.Server(params)
    print("ready", server.listening_address, flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
