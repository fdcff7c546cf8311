"""Stage kinds: the functions DVC runs, one module per kind."""
