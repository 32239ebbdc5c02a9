"""The whole course, timed from a cold cache and again warm, against the machine's limit.

    python bench/bench_course.py --profile ci [--precision auto|float32|bfloat16] [--pattern '0[0-3]_*'] [--bonus]

Runs every chapter headless (as ``make course`` does) twice in a fresh cache folder: cold
(no features, activations or runs; the converted models are linked in, since converting them
is ``make models``' work, not the course's) and warm (everything cached). Per chapter it
reports seconds, the kernel's peak resident memory, and the **unavoidable work**: the matmul
FLOPs of every model over every distinct text it must see once (frozen forwards, from the
ledger in ``w2s_helpers.core.work``) plus every training and scoring pass, divided by this
machine's measured matmul peak in the precision that ran. The ratio cold / bound is the
distance to that limit; "repeated" is forward work done again for a text a model had already
seen (in an earlier chapter or the same one): a lever.

Writes ``bench/results/course_<profile>_<precision>_<cpu>.md`` and prints it. Not a test:
timings vary with load; compare a machine with itself.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def unavoidable(logs: list[Path], peak: dict[str, float] | None = None) -> list[dict]:
    """Per chapter (log files in order): total, unique and repeated FLOPs from the ledger, and
    ``bound_s``, the unique work of each precision at that precision's ``peak`` (GFLOP/s)."""
    seen: set[tuple[str, str, str]] = set()
    rows = []
    for log in logs:
        total = repeated = 0.0
        unique: dict[str, float] = {}
        kinds: dict[str, float] = {}
        if log.exists():
            for line in log.read_text().splitlines():
                e = json.loads(line)
                dt = e.get("dtype", "float32")
                total += e["flops"]
                kinds[e["kind"]] = kinds.get(e["kind"], 0.0) + e["flops"]
                if "items" not in e:  # training and scoring: every pass is needed
                    unique[dt] = unique.get(dt, 0.0) + e["flops"]
                    continue
                per_token = e["flops"] / max(1, e["tokens"])
                for h, n in e["items"]:
                    key = (e["kind"], e["model"], h)
                    if key in seen:
                        repeated += per_token * n
                    else:
                        seen.add(key)
                        unique[dt] = unique.get(dt, 0.0) + per_token * n
        bound = sum(f / (peak[dt] * 1e9) for dt, f in unique.items()) if peak else float("nan")
        rows.append({"total": total, "unique": sum(unique.values()), "by_dtype": unique, "repeated": repeated,
                     "kinds": kinds, "bound_s": bound})
    return rows


def peaks() -> dict[str, float]:
    """This machine's matmul peak per precision (1024^3, best of repeats), GFLOP/s."""
    from w2s_helpers.core import precision

    return {dt: precision.measure_matmul(dt, m=1024, k=1024, n=1024, budget_s=1.0) for dt in ("float32", "bfloat16")}


def run_pass(chapters: list[Path], profile: str, out: Path, logs: Path, tag: str, timeout: int) -> list[dict]:
    """Each chapter through ``runner.run_all`` (time, kernel peak memory), with its own work log."""
    from w2s_helpers.core import work
    from w2s_helpers.course import runner

    rows = []
    for nb in chapters:
        log = logs / f"{tag}-{nb.stem}.jsonl"
        os.environ[work.WORK_ENV] = str(log)
        print(f"\n=== {tag}: {nb.name}", flush=True)
        (row,) = runner.run_all(profile, out / tag, pattern=nb.name, timeout=timeout, progress=True, echo=False)
        rows.append({**row, "rss_mb": row["peak_rss_mb"], "log": log})
    os.environ.pop(work.WORK_ENV, None)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="ci")
    ap.add_argument("--precision", default="auto", help="auto (the profiles' default), float32 or bfloat16")
    ap.add_argument("--pattern", default="[0-9][0-9]*_*.ipynb", help="which chapters (glob; bonus ones need --bonus)")
    ap.add_argument("--bonus", action="store_true", help="also the bonus chapters (as make course BONUS=1)")
    ap.add_argument("--timeout", type=int, default=7200, help="limit per cell, seconds")
    ap.add_argument("--no-warm", action="store_true", help="skip the warm pass")
    ap.add_argument("--keep", action="store_true", help="keep the benchmark's cache folder")
    args = ap.parse_args()

    from w2s_helpers.core import precision, store
    from w2s_helpers.core.profiles import get
    from w2s_helpers.course import runner

    user_cache = store.cache_root()
    bench_cache = Path(tempfile.mkdtemp(prefix="w2s-bench-course-"))
    for sub in ("models", "gguf"):  # converted weights: `make models`' work, not the course's
        if (user_cache / sub).is_dir():
            (bench_cache / sub).symlink_to(user_cache / sub, target_is_directory=True)
    os.environ[store.CACHE_ENV] = str(bench_cache)
    if args.precision != "auto":
        os.environ[precision.PRECISION_ENV] = args.precision
    profile = get(args.profile)
    choice = precision.explain(profile.features.dtype, "cpu")
    before = peaks()
    chapters = runner.chapters(args.pattern, args.bonus)
    print(f"profile {profile.name}, precision {choice.dtype} ({choice.reason}); matmul peaks {before} GFLOP/s; "
          f"{len(chapters)} chapters; cache {bench_cache}", flush=True)

    out = Path(tempfile.mkdtemp(prefix="w2s-bench-out-"))
    try:
        cold = run_pass(chapters, profile.name, out, bench_cache, "cold", args.timeout)
        warm = [] if args.no_warm else run_pass(chapters, profile.name, out, bench_cache, "warm", args.timeout)
        after = peaks()  # the limit is the best this machine did, before or after
        peak = {dt: max(before[dt], after[dt]) for dt in before}
        work = unavoidable([r["log"] for r in cold], peak)
    finally:
        if not args.keep:
            shutil.rmtree(bench_cache, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)

    cpu = precision.cpu_name()
    lines = [
        f"# `make course` at `{profile.name}`, {choice.dtype}",
        "",
        f"Machine: {cpu}, {os.cpu_count()} cores, torch {__import__('torch').__version__} "
        f"({__import__('torch').backends.cpu.get_cpu_capability()} kernels"
        f"{', ONEDNN_MAX_CPU_ISA=' + os.environ['ONEDNN_MAX_CPU_ISA'] if os.environ.get('ONEDNN_MAX_CPU_ISA') else ''}); "
        f"native bf16 flags: {', '.join(precision.cpu_bf16_flags()) or 'none'}.  ",
        f"Precision: {choice.dtype} ({choice.reason}).  ",
        f"Matmul peak (1024^3, best of repeats, before and after the run): fp32 {peak['float32']:.0f}, "
        f"bf16 {peak['bfloat16']:.0f} GFLOP/s; each precision's work is divided by its own peak (chapter 4's "
        f"policies train in fp32 everywhere). "
        f"Measured {time.strftime('%Y-%m-%d')} with `python bench/bench_course.py --profile {profile.name}"
        f"{' --precision ' + args.precision if args.precision != 'auto' else ''}`.",
        "",
        "| chapter | cold s | warm s | kernel peak RSS (GiB) | unavoidable work (TFLOP) | bound at peak (s) | cold / bound | repeated forward (TFLOP) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    tot = {"cold": 0.0, "warm": 0.0, "unique": 0.0, "repeated": 0.0}
    for i, (c, w) in enumerate(zip(cold, work)):
        bound = w["bound_s"]
        ws = warm[i]["seconds"] if warm else float("nan")
        rss = max(c["rss_mb"], warm[i]["rss_mb"] if warm else 0) / 1024
        ratio = f"{c['seconds'] / bound:.1f}" if bound > 0.5 else "—"
        lines.append(f"| {c['notebook']} | {c['seconds']:.0f} | {ws:.0f} | {rss:.1f} | {w['unique'] / 1e12:.2f} | "
                     f"{bound:.0f} | {ratio} | {w['repeated'] / 1e12:.2f} |")
        tot["cold"] += c["seconds"]
        tot["warm"] += ws
        tot["unique"] += w["unique"]
        tot["repeated"] += w["repeated"]
    bound = sum(w["bound_s"] for w in work)
    lines.append(f"| **all** | **{tot['cold']:.0f}** | **{tot['warm']:.0f}** | | **{tot['unique'] / 1e12:.2f}** | "
                 f"**{bound:.0f}** | **{tot['cold'] / bound:.1f}** | **{tot['repeated'] / 1e12:.2f}** |")
    kinds: dict[str, float] = {}
    for w in work:
        for k, v in w["kinds"].items():
            kinds[k] = kinds.get(k, 0.0) + v
    lines += ["", "Work done in the cold pass by kind (TFLOP): "
              + ", ".join(f"{k} {v / 1e12:.2f}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])) + ".",
              "Python, tokenisation, data loading and plotting are not in the bound: it is what the matmuls alone "
              "would take at the measured peak."]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    tag = re.sub(r"[^a-z0-9]+", "-", cpu.lower()).strip("-")[:24]
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").lower()
    dest = REPO / "bench" / "results" / f"course_{profile.name}_{choice.dtype}_{tag}{'_' + isa if isa else ''}.md"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(text)
    print(f"wrote {dest.relative_to(REPO)}")


if __name__ == "__main__":
    sys.exit(main())
