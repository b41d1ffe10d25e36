"""Running many inputs, or one long video, on every core of a machine (``workers``), in pieces
(``chunks``), or on a Ray cluster (``ray_runner``). Each calls the pipeline through the narrow
task functions of ``tasks``, so that a run's rows do not depend on how it was spread out."""
