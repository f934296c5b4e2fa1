"""Evaluation: the monitor's own code on labelled data (clusters, replay, pages, stories)."""
