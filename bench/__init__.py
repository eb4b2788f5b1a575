"""Benchmarks of Flask-Decentro on loopback against the offline sandbox: ``python -m bench``.

See docs/benchmarks.md for what each figure measures and the latest results.
"""
