"""Mitigations (chapter 5, to come): bootstrapping through an intermediate model and
high-confidence filtering of weak labels, in both scenarios. Built on the scenarios and the
measurement layer; used by the course layer.
"""
