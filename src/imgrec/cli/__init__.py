"""imgrec.cli."""
