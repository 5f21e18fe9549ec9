"""Curation: raw -> curated with atomic checkpoints, rescue, quarantine, dedupe and replay.

Import the pieces from their modules (``curation.pipeline``, ``curation.replay``,
``curation.transform``); this package import stays free of Spark.
"""
