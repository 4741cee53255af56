"""imgrec.analyzers."""
