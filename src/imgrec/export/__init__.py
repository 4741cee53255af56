"""imgrec.export."""
