"""The CTR example that ships with the core: `inferflow demo` and `inferflow bench` run it from any install.

* ``config/``   the example's config tree (three models, Numerix expressions), the Go version's JSON;
* ``models/``   the S1 ranker as an ONNX file in a Triton-layout repository (built by
  ``examples/models/make_mlp.py`` of the source tree; a test checks the two agree);
* ``generate``  deterministic feature data for the embedded store, written under a cache directory;
* ``harness``   config directories, server processes and requests shared by the demo and the benchmark.
"""
