"""``python -m slics.rehearsal [--workdir DIR [--reuse]] [--stages NAME ...] [--backbone NAME]
[--target-backbone NAME] [--keep]``: rehearse the full profile."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ..embedding.registry import embed_backbones
from .run import RehearsalError, environment, prepare, run_stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a new temp dir, removed after)")
    parser.add_argument("--stages", nargs="*", default=None, help="run only these dvc.yaml stages (in dvc.yaml order)")
    parser.add_argument("--backbone", default="clip-vit-b32", choices=embed_backbones("full"),
                        help="the CLIP backbone of the embed stages (registry names)")
    parser.add_argument("--target-backbone", default=None, choices=embed_backbones("full"),
                        help="stage 07's target space instead of params.yaml's (clip-vit-l14); `make test` "
                             "uses clip-rn50, since the maps need 520 images and ViT-L/14 costs about 1 s an "
                             "image on a 2-core CPU (its loader and encoder are tested on their own)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (a --workdir is always kept)")
    parser.add_argument("--reuse", action="store_true",
                        help="rerun stages in a prepared --workdir (its fixtures, weights and earlier outputs)")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="slics-rehearsal-"))
    start = time.perf_counter()
    ok = False
    try:
        if args.reuse and not args.workdir:
            raise RehearsalError("--reuse needs the --workdir of an earlier rehearsal.")
        env = (environment(workdir) if args.reuse
               else prepare(workdir, backbone=args.backbone, target_backbone=args.target_backbone))
        report = run_stages(workdir, env, only=args.stages)
        ok = True
    except RehearsalError as err:
        print(f"error: rehearsal of the full profile failed: {err}\n(scratch folder kept: {workdir})", file=sys.stderr)
        return 1
    finally:
        kept = args.workdir or args.keep or not ok
        if not kept:
            shutil.rmtree(workdir, ignore_errors=True)
    total = time.perf_counter() - start
    print(f"rehearsal of the full profile passed: {len(report)} stage(s), "
          f"{sum(r['outputs'] for r in report)} expected outputs, in {total:.0f} s"
          + (f"; scratch folder {workdir}" if kept else ""))
    return 0


if __name__ == "__main__":
    from slics.utils.errors import run_main

    sys.exit(run_main(main))
