"""`mcuforge report DIR`: rebuild the HTML report and its PNGs from a run's saved results."""

from __future__ import annotations

import click

from ..report.html import render_report


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False))
def command(run_dir: str) -> None:
    """Rebuild RUN_DIR/report/index.html from RUN_DIR/results/*.json."""
    path = render_report(run_dir)
    click.echo(f"wrote {path}")
