"""All file and cluster I/O. Stages never read or write; the CLI calls these and the stages.

Writers are atomic: they write a temporary file beside the target and rename it, so a
failed run leaves nothing half-written.
"""
