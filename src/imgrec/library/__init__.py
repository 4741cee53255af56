"""imgrec.library."""
