"""Development helpers, not pipeline stages: the demo, its generated sample and local image server, the tiny
random-weight CLIP for tests and offline runs, and the synthetic embedding generator for benchmarks and tests.

``python -m clustering.devtools.demo`` (``make demo``), ``python -m clustering.devtools.tiny_model DIR``,
``python -m clustering.devtools.sample DIR``, ``python -m clustering.devtools.devserver ROOT``.
"""
