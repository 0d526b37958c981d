"""Servers and helpers for the tests, benches and scripts; never installed with the product.

Importable as ``support`` with ``tests/`` on ``sys.path`` (pytest's ``pythonpath``
setting; ``PYTHONPATH=tests`` for bench/ and scripts/).
"""
