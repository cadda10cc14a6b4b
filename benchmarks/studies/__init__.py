"""Studies that build model variants and measure them with the quality suite (e.g. ``benchmarks.studies.size``)."""
