"""perf/ helpers shared by bench, scaling and profile (standard library only)."""
