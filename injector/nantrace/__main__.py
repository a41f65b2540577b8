"""python -m nantrace ... (the same as the `nantrace` command)."""
from .cli import console_main

console_main()
