"""Orchestration: the JVM-free checkpoint lookups, the state machine and its local runner.

Submodules are imported on demand (the Lambda imports only what it needs, to keep its cold
start short): ``checkpoints``, ``snapshots``, ``schema_check``, ``handlers``,
``state_machine``, ``local_runner``.
"""
