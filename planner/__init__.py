"""planner: offline capacity planning for GPU clusters serving multi-LLM agentic workflows.

The pipeline (one module or package per stage, each pure):
ingest -> aggregate -> profiles -> search -> place -> render, with `simulate` for evaluation.
File and cluster I/O live in `planner.io`; the CLI in `planner.cli` wires them together.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("planner")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
