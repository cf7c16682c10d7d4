"""Probes: questions about a generator that a single score does not answer.

- :mod:`.memorization`: does the generated set copy its training set? (C_T, memorized fraction,
  authenticity, train-test gap, verdict, gallery)
- :mod:`.sensitivity`: how do the metrics move when real images are degraded step by step, and how
  much does the resize filter alone shift them?
- :mod:`.modes`: how many of Stacked Fashion-MNIST's 1000 modes does a generator cover; per-class
  scores of class-conditional generators.

Shared input handling (open, subsample, extract once, refuse mismatched extractors) is in
:mod:`.inputs`; PNG figures drawn with PIL in :mod:`.plots`.
"""
