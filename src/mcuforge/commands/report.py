"""`mcuforge report DIR`: rebuild the HTML report and its PNGs from a run's saved results."""

from __future__ import annotations

import click

from ..report.html import render_report


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False))
def command(run_dir: str) -> None:
    """Rebuild RUN_DIR/report/index.html from RUN_DIR/results/*.json."""
    from ..report.results import load_stage

    saved = load_stage(run_dir, "train")
    if saved and saved.get("task") == "kws":
        from ..report.kws_html import render_kws_report
        path = render_kws_report(run_dir)
    else:
        path = render_report(run_dir)
    click.echo(f"wrote {path}")
