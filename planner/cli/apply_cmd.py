"""`planner apply DIR`: server-side apply of rendered manifests, with optional prune."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.cli import app


@app.command("apply")
def apply_command(
    directory: Annotated[
        Path,
        typer.Argument(help="Manifests directory (DIR/manifests from `planner plan -o DIR`)."),
    ],
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Show the changes and let the server validate them "
            "(dryRun=All) without persisting anything.",
        ),
    ] = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Delete planner-labelled objects that the manifests no "
            "longer contain. Objects without planner's label are never touched.",
        ),
    ] = False,
    allow_empty: Annotated[
        bool,
        typer.Option(
            "--allow-empty",
            help="With --prune, allow deleting every serving Deployment of a namespace "
            "(refused otherwise: it usually means a broken plan or manifests folder).",
        ),
    ] = False,
) -> None:
    """Server-side apply the manifests with field manager `planner` and print the changes."""
    from planner.jobs.applying import apply_job

    changes = apply_job(directory, prune, dry_run, allow_empty).changes
    for change in changes.changes:
        if change.action != "unchanged":
            typer.echo(change.line())
    typer.echo(f"{'dry run: ' if dry_run else ''}{changes.summary()}")
