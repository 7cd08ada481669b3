"""`mcuforge verify DIR`: build the generated C and check it bit for bit against the reference.

Runs the sanitised host build (-fsanitize=address,undefined) and, for Cortex-M projects, the ELF
under QEMU, on extreme, random and sample inputs; prints one pass/fail line per input and runner.
Exit code 0 when everything is bit-exact, 2 otherwise.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..codegen.verify import project_model_source, verify_project
from ..errors import McuforgeError
from ..frontends.load import load_graph


@click.command("verify")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--random", "random_count", default=3, show_default=True, help="Random inputs.")
@click.option("--seed", default=0, show_default=True, help="Seed of the first random input.")
@click.option("--no-qemu", is_flag=True, help="Skip the QEMU run of a Cortex-M project.")
def command(directory: Path, random_count: int, seed: int, no_qemu: bool) -> None:
    """Check the C project in DIRECTORY against the int8 reference runtime."""
    model = load_graph(project_model_source(directory), require="compile")
    results = verify_project(directory, model, random_count, seed, qemu=not no_qemu)
    for r in results:
        status = "PASS" if r.passed else f"FAIL ({r.mismatches} of {r.total} bytes differ)"
        click.echo(f"{r.runner:<18} {r.label:<40} {status}")
    failed = [r for r in results if not r.passed]
    if failed:
        raise McuforgeError(f"verification failed: {len(failed)} of {len(results)} runs differ from "
                            "the reference")
    click.echo(f"all {len(results)} runs bit-exact with the reference runtime")
