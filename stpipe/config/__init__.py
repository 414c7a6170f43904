"""Where a configuration becomes a validated graph: compose (Hydra) → schema → semantic checks → graph checks."""
