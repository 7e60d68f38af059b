"""Runnable examples, one per architecture family: `python -m gpugrad.examples.NAME`."""
