"""`mcuforge zoo`: every registered model with its MACs, params, Flash and peak memory."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from ..analysis.profile import profile_graph
from ..models.spec_graph import build_graph
from ..models.zoo import get_spec, list_models, zoo_entry
from ..targets import BOARDS


def zoo_rows() -> list[dict]:
    """One dict per zoo model at its default resolution and width."""
    rows = []
    for name in list_models():
        spec = get_spec(name)
        report = profile_graph(build_graph(spec, name))
        rows.append({
            "model": name, "resolution": spec.resolution, "macs": report.macs, "params": report.params,
            "flash_bytes": report.flash_bytes, "peak_activation_bytes": report.peak_activation_bytes,
            "peak_activation_bytes_no_inplace": report.peak_activation_bytes_no_inplace,
            "fits": [t.name for t in BOARDS.values()
                     if report.peak_activation_bytes <= t.sram_bytes and report.flash_bytes <= t.flash_bytes],
            "source": zoo_entry(name).source,
        })
    return rows


def print_zoo_table(rows: list[dict], console: Console) -> None:
    """The human table of `zoo_rows`."""
    table = Table(title="mcuforge model zoo (int8, analytic)",
                  caption="kB = 1024 B; peak = activations with in-place depthwise, input counted")
    for column in ("model", "res", "MACs (M)", "params (M)", "Flash kB", "peak kB", "no in-place kB", "fits"):
        table.add_column(column, justify="left" if column in ("model", "fits") else "right")
    for row in rows:
        table.add_row(row["model"], str(row["resolution"]), f"{row['macs'] / 1e6:.1f}",
                      f"{row['params'] / 1e6:.3f}", f"{row['flash_bytes'] / 1024:,.0f}",
                      f"{row['peak_activation_bytes'] / 1024:,.1f}",
                      f"{row['peak_activation_bytes_no_inplace'] / 1024:,.1f}", ", ".join(row["fits"]) or "-")
    console.print(table)


@click.command("zoo")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the table.")
def command(as_json: bool) -> None:
    """List the model zoo with MACs, params, Flash and peak memory, and which boards each fits."""
    rows = zoo_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=1))
    else:
        print_zoo_table(rows, Console(width=140))
