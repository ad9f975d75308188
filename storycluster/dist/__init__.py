"""The pipeline beyond one machine: engine-neutral stages (:mod:`.stages`) and their Ray Data wiring
(:mod:`.ray_engine`, imported on use: it needs the ``dist`` extra)."""
