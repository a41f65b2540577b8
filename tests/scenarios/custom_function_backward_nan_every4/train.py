"""The custom_function_backward_nan scenario, run again under a different nantrace configuration (expected.json's _env)."""
import os
import runpy

runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "custom_function_backward_nan", "train.py"),
               run_name="__main__")
