"""Command line: ``python -m w2s_helpers {check,kernel,fetch,build-data,run,train,exercises,results,references,colab}``."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m w2s_helpers", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)

    sub.add_parser("check", help="print the environment check (versions, threads, device, precision, folders)")
    sub.add_parser("kernel", help="register this interpreter as the Jupyter kernel 'w2s-course' (venv or conda)")

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
    r.add_argument("--pattern", default="[0-9][0-9]*_*.ipynb", help="which notebooks (glob), e.g. '0[0-2]_*.ipynb'")
    r.add_argument("--task", default="hh", help="the task every chapter runs on: 'hh' (the paper's HH splits) or "
                                                 "'arithmetic' (chapter 3b's generated task); outputs go to "
                                                 "<out>/<profile>-<task>")
    r.add_argument("--data-dir", default=None, help="another data folder in the HH layout (task 'hh'): other HH-RLHF "
                                                     "subsets or your own pairs; outputs go to <out>/data-<name>/")
    r.add_argument("--sizes", default=None, help="draw fewer pairs than the profile, e.g. 'n_train=150,n_test=120' "
                                                 "(for a smaller data folder; sets $W2S_SIZES for every chapter)")
    r.add_argument("--bonus", action="store_true", help="also run the bonus chapters (01b_training_regimes, ...)")
    r.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a parameter for every chapter, e.g. -p REGIME top_blocks (repeatable; numbers, "
                        "True/False/None are converted)")
    r.add_argument("--timeout", type=int, default=None, help="limit per cell, in seconds; 0: none (default: the "
                                                              "profile's: ci 3600, laptop 8 h, paper none)")
    r.add_argument("--quiet", action="store_true", help="one line per cell only: do not echo the cells' "
                                                        "prints and progress bars")

    t = sub.add_parser("train", help="train the reward-model or policy jobs a chapter queued at a finetune_jobs profile (paper); "
                                     "under `accelerate launch` for several GPUs (configs/accelerate/)")
    t.add_argument("--jobs", required=True, help="the jobs file the chapter's message names")
    t.add_argument("--save-steps", type=int, default=25, help="a checkpoint every this many updates (0: none); an "
                                                               "interrupted job restarts from its last one")
    t.add_argument("--grad-accum", type=int, default=1, help="accumulate gradients over this many steps per update "
                                                              "(the global batch stays the profile's)")
    t.add_argument("--checkpointing", action="store_true", help="activation checkpointing (less memory, ~20%% slower; "
                                                                     "reward models only)")
    t.add_argument("--status", action="store_true", help="count finished, interrupted and new jobs; train nothing")

    e = sub.add_parser("exercises", help="write the learner copies (solutions stubbed) to notebooks/exercises/")
    e.add_argument("--check", action="store_true", help="write nothing; exit 1 if a copy is missing or out of date")

    co = sub.add_parser("colab", help="give every chapter its setup cell (installs the course outside its "
                                      "environment) and, once the repository is set, its Open in Colab badge")
    co.add_argument("--repo", default=None, help="the GitHub repository (owner/name) the course is published in; "
                                                  "saved in pyproject.toml [tool.w2s-course]")
    co.add_argument("--branch", default=None, help="its branch (default: the setting's, main)")
    co.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 if a chapter disagrees with the setting")

    pub = sub.add_parser("results", help="publish the executed chapters of build/<profile>/ to results/<profile>/")
    pub.add_argument("--profile", default="laptop")
    pub.add_argument("--build", default="build", help="where `run` wrote the executed chapters (default: build)")

    ref = sub.add_parser("references", help="record the ci outputs CI compares (tests/nbval/references.json), "
                                            "or --prepare the notebooks nbval executes")
    ref.add_argument("--build", default="build", help="where `run --profile ci` wrote the executed chapters")
    ref.add_argument("--prepare", default=None, metavar="DIR", help="write the notebooks nbval executes to DIR")

    args = parser.parse_args(argv)
    if args.cmd == "check":
        from w2s_helpers.course.env import package_report, system_report

        for k, v in system_report().items():
            print(f"{k:>16}: {v}")
        bad = [r for r in package_report() if not r["ok"]]
        for r in package_report():
            print(f"{r['package']:>16}: {r['installed']} (pinned {r['pinned']}){'' if r['ok'] else '  <-- MISMATCH'}")
        return 1 if bad else 0
    if args.cmd == "kernel":
        from w2s_helpers.course.runner import KERNEL, ensure_kernel

        ensure_kernel()
        print(f"Jupyter kernel {KERNEL!r} -> {sys.executable}")
        return 0
    if args.cmd == "fetch":
        from w2s_helpers.core import models, profiles

        from w2s_helpers.core.hub import HubUnavailableError

        prof = profiles.get(args.profile)
        po = [r for r in ((prof.po.weak, prof.po.mid, prof.po.strong) if prof.po else ()) if r]
        names = args.rungs or list(dict.fromkeys(prof.ladder + prof.task_rungs + tuple(po)))
        for name in names:
            try:
                where = (models.prefetch_hub(name) if models.get_rung(name).source == "hub"
                         else models.prepare(name, install_missing=True))
            except HubUnavailableError as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
            print(f"{name}: {where}", flush=True)
        return 0
    if args.cmd == "build-data":
        from w2s_helpers.core.hub import build_hub_splits

        out = build_hub_splits(args.out, source=args.source, seed=args.seed)
        print(f"wrote the splits to {out}\nuse them with: export W2S_DATA_DIR={out}")
        return 0
    if args.cmd == "train":
        from w2s_helpers.core.launch import kind_of
        from w2s_helpers.policies import jobs as policy_jobs
        from w2s_helpers.rewards import jobs

        try:
            policies = kind_of(args.jobs) == "policy"        # a chapter writes one kind per file
            queued = (policy_jobs if policies else jobs).read_jobs(args.jobs)
            if args.status:
                counts = (policy_jobs if policies else jobs).status(queued)
                print(", ".join(f"{v} {k}" for k, v in counts.items()) + f" (of {len(queued)})")
                return 0
            if policies:
                policy_jobs.run_file(args.jobs, save_steps=args.save_steps, grad_accum=args.grad_accum)
            else:
                jobs.run_file(args.jobs, save_steps=args.save_steps, grad_accum=args.grad_accum,
                              checkpointing=args.checkpointing)
        except (FileNotFoundError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        finally:
            end_process_group()
        return 0
    if args.cmd == "exercises":
        from w2s_helpers.core.paths import REPO_ROOT
        from w2s_helpers.course.exercises import write

        stale = write(check=args.check)
        for path in stale:
            print(f"{'out of date' if args.check else 'wrote'}: {path.relative_to(REPO_ROOT)}")
        if args.check and stale:
            print("run: python -m w2s_helpers exercises", file=sys.stderr)
            return 1
        if not stale:
            print("the learner copies are up to date")
        return 0
    if args.cmd == "colab":
        from w2s_helpers.core.paths import REPO_ROOT
        from w2s_helpers.course import colab

        try:
            pub = colab.read_setting()
            if args.repo is not None or args.branch is not None:
                pub = colab.Publication(pub.repository if args.repo is None else args.repo,
                                        args.branch or pub.branch)
                if not args.check:
                    colab.write_setting(pub)
            stale = colab.write(pub, check=args.check)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        for path in stale:
            print(f"{'out of date' if args.check else 'wrote'}: {path.relative_to(REPO_ROOT)}")
        where = f"github.com/{pub.repository} ({pub.branch})" if pub.repository else "no repository set: no badges"
        print(f"chapters {'checked' if args.check else 'written'} for {where}")
        if args.check and stale:
            print("run: python -m w2s_helpers colab (then python -m w2s_helpers exercises)", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "references":
        from w2s_helpers.course import references

        try:
            if args.prepare:
                for path in references.prepare(args.prepare):
                    print(f"prepared {path}")
            else:
                refs = references.record(args.build)
                print(f"recorded {sum(map(len, refs.values()))} checked outputs of {len(refs)} chapters in "
                      f"{references.REFERENCES.relative_to(references.REPO_ROOT)}")
        except (FileNotFoundError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "results":
        from w2s_helpers.core.paths import REPO_ROOT
        from w2s_helpers.course.published import write as publish_all

        skipped: list[str] = []
        try:
            written = publish_all(args.profile, args.build, skipped)
        except (FileNotFoundError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        for path in written:
            print(f"wrote {path.relative_to(REPO_ROOT)} ({path.stat().st_size / 1024:.0f} KiB)")
        for name in skipped:
            print(f"skipped {name}: not a finished run (no stamp from `python -m w2s_helpers run`)")
        return 0
    if args.cmd == "run":
        from w2s_helpers.course.runner import ChapterFailed, run_all

        params = {name: parse_value(value) for name, value in args.param}
        if "PROFILE" in params or "TASK" in params:
            parser.error("set the profile with --profile and the task with --task, not -p")
        from w2s_helpers.core.tasks import check

        try:
            check(args.task)
        except ValueError as e:
            parser.error(str(e))
        out = args.out
        if args.sizes:
            from w2s_helpers.core import profiles

            try:
                profiles.parse_sizes(args.sizes)
            except ValueError as e:
                parser.error(str(e))
            os.environ[profiles.SIZES_ENV] = args.sizes       # every kernel inherits it
        if args.data_dir:
            from pathlib import Path

            from w2s_helpers.core import data

            if args.task != "hh":
                parser.error("--data-dir replaces the HH splits: use it with --task hh")
            try:
                folder = data.resolve_data_dir(args.data_dir)
            except FileNotFoundError as e:
                parser.error(str(e))
            os.environ[data.DATA_ENV] = str(folder)            # every kernel inherits it
            out = str(Path(args.out) / f"data-{folder.name}")
        try:
            rows = run_all(args.profile, out, args.pattern, timeout=args.timeout, progress=True,
                           echo=not args.quiet, params=params, bonus=args.bonus,
                           task=args.task)
        except ChapterFailed as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        for row in rows:
            print(f"{row['notebook']:>40}: {row['seconds'] / 60:5.1f} min, kernel peak {row['peak_rss_mb']} MiB")
        return 0
    return 2


def end_process_group() -> None:
    """Under ``accelerate launch``, end this process's group before exiting (a group left alive at
    exit was seen aborting a rank with "terminate called without an active exception")."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def parse_value(text: str):
    """A command-line parameter value: int, float, True/False/None, or the string itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"True": True, "true": True, "False": False, "false": False, "None": None}.get(text, text)

