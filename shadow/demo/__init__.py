"""The bundled demo: a small legacy scoring API and its rewrite, for `shadow demo` to compare."""
