"""Keyword spotting on FSDD, leave one speaker out: for each of the five speakers, train on the other
four with the `mcuforge demo --task kws` defaults (`pipeline.kws.KwsSettings`), quantise to int8
and score every one of the held-out speaker's 500 clips (float and int8 reference runtime), so the
held-out figure is not one speaker's luck.

Run: ``.venv/bin/python benchmarks/kws_fsdd_speakers.py [--epochs N] [--speaker NAME ...]
[--json out.json] [--out DIR]``. With the default 30 epochs one speaker takes about as long as the
demo's training stage (15 min on the shared 2-core machine), so all five take over an hour; runs
live under ``--out`` (a temporary folder by default).
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from mcuforge.atomic import write_json_atomic
from mcuforge.data.fsdd import fsdd_dir, fsdd_speakers
from mcuforge.pipeline.kws import KwsSettings, train_kws


def main() -> None:
    """Train and score one model per held-out speaker and print the table (module doc)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=KwsSettings().epochs)
    parser.add_argument("--speaker", action="append", help="Hold out only these speakers (repeatable).")
    parser.add_argument("--json", type=Path, help="Write the figures here.")
    parser.add_argument("--out", type=Path, help="Folder for the runs (default: a temporary one).")
    args = parser.parse_args()
    speakers = args.speaker or fsdd_speakers(fsdd_dir())
    base = replace(KwsSettings(), epochs=args.epochs, progress=False)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = args.out or Path(scratch)
        for speaker in tqdm(speakers, desc="held-out speakers", unit="speaker"):
            _, _, result = train_kws(replace(base, dataset=f"fsdd:{speaker}"), root / speaker)
            rows.append({"speaker": speaker, "clips": result.test_clips, "float": result.float_accuracy,
                         "int8": result.int8_accuracy, "training_seconds": result.training_seconds})
            tqdm.write(f"{speaker:>10}  {result.test_clips} clips  float {result.float_accuracy:7.2%}  "
                       f"int8 {result.int8_accuracy:7.2%}  ({result.training_seconds:.0f} s training)")
    clips = sum(row["clips"] for row in rows)
    pooled = sum(row["int8"] * row["clips"] for row in rows) / clips
    print(f"{'all':>10}  {clips} clips  int8 {pooled:7.2%} (pooled over the held-out speakers; "
          f"{args.epochs} epochs, model {base.model} width {base.width})")
    if args.json is not None:
        write_json_atomic(args.json, {"epochs": args.epochs, "speakers": rows, "int8_pooled": pooled}, indent=2)


if __name__ == "__main__":
    main()
