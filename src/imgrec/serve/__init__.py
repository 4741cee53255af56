"""imgrec.serve."""
