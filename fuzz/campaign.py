#!/usr/bin/env python3
"""A fuzzing campaign: every cargo-fuzz target in turn, then one table (`just fuzz-all`).

    campaign.py SECONDS [--json]

Each target runs through `just fuzz TARGET SECONDS`, so the toolchain choice, the limits, the
seeds and the corpus layout are the recipe's. Its whole output goes to fuzz/logs/TARGET.log;
the terminal gets it too, less libFuzzer's line per new input and its dictionary. Then a row per
target: libFuzzer's seconds, inputs run and inputs a second (its final stats), the edges covered
(`cov:` of its last status line), the corpus's files, and the findings, each with the artifact
libFuzzer wrote. Exit status: 0 when every target ran out its time without a finding, 1 when one
found something or did not run (a build error), 2 for bad arguments.

With --json the table is a JSON document on stdout instead, and the fuzzers' output goes to
stderr. Standard library only (Python 3.11); tests in test_campaign.py beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

FUZZ_DIR = Path(__file__).resolve().parent
ROOT = FUZZ_DIR.parent

# libFuzzer's lines that the log keeps but the terminal is spared: one per input added to the
# corpus or shrunk (thousands a minute early on), the functions each reached first, and the
# recommended dictionary printed at the end.
QUIET = re.compile(
    r"^#\d+\s+(NEW|REDUCE|RELOAD)\s"
    r"|^\tNEW_FUNC\["
    r'|^".*" # Uses: \d+$'
    r"|^###### (Recommended|End of recommended) dictionary"
)
STATUS_COV = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+)\b")
DONE = re.compile(r"^Done (\d+) runs in (\d+) second")
STAT = re.compile(r"^stat::(\w+):\s+(\d+)$")
ARTIFACT = re.compile(r"Test unit written to (\S+)")
TOOLCHAIN = re.compile(r"^just fuzz: \S+ for \d+ s on (.*)$")


@dataclass
class Finding:
    kind: str  # crash, timeout, oom, leak, ... (the artifact's prefix)
    artifact: str


@dataclass
class Result:
    target: str
    exit_status: int = 0
    toolchain: str | None = None
    seconds: int | None = None
    inputs: int | None = None
    inputs_per_second: int | None = None
    edges: int | None = None
    corpus_files: int = 0
    findings: list[Finding] = field(default_factory=list)
    log: str = ""

    @property
    def failed(self) -> bool:
        return self.exit_status != 0 or bool(self.findings)

    def outcome(self) -> str:
        """The findings column: what was found and where, or why the target did not run."""
        if self.findings:
            return "; ".join(f"{f.kind}: {f.artifact}" for f in self.findings)
        if self.exit_status != 0:
            return f"did not finish (exit {self.exit_status}, no artifact): see {self.log}"
        return "none"


def targets(manifest: Path) -> list[str]:
    """The fuzz targets, in fuzz/Cargo.toml's order: its [[bin]]s under fuzz_targets/."""
    with manifest.open("rb") as f:
        bins = tomllib.load(f).get("bin", [])
    return [b["name"] for b in bins if b.get("path", "").startswith("fuzz_targets/")]


def relative(path: str) -> str:
    """A path as seen from the repository's root, when it is under it."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return path


def parse_log(target: str, text: str) -> Result:
    """The figures of one `just fuzz` run, from its output."""
    r = Result(target)
    stats: dict[str, int] = {}
    for line in text.splitlines():
        if r.toolchain is None and (m := TOOLCHAIN.match(line)):
            r.toolchain = m.group(1)
        elif m := STATUS_COV.match(line):
            r.edges = int(m.group(2))
        elif m := DONE.match(line):
            r.inputs, r.seconds = int(m.group(1)), int(m.group(2))
        elif m := STAT.match(line):
            stats[m.group(1)] = int(m.group(2))
        if m := ARTIFACT.search(line):
            path = relative(m.group(1))
            kind = Path(path).name.split("-", 1)[0]
            # A slow unit is written as an artifact but is not a finding: the timeout is.
            if kind != "slow" and all(f.artifact != path for f in r.findings):
                r.findings.append(Finding(kind, path))
    # The final stats are printed after a crash too, where no `Done` line is.
    if "number_of_executed_units" in stats:
        r.inputs = stats["number_of_executed_units"]
    if "average_exec_per_sec" in stats:
        r.inputs_per_second = stats["average_exec_per_sec"]
    elif r.inputs is not None and r.seconds:
        r.inputs_per_second = r.inputs // r.seconds
    return r


def corpus_files(corpus: Path) -> int:
    return sum(1 for p in corpus.iterdir() if p.is_file()) if corpus.is_dir() else 0


def run_target(just: str, target: str, seconds: int, out: TextIO, logs: Path) -> Result:
    """`just fuzz TARGET SECONDS`, its output logged whole and shown to `out` less QUIET lines."""
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{target}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [just, "fuzz", target, str(seconds)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            log.write(line)
            if not QUIET.search(line):
                out.write(line)
                out.flush()
        status = proc.wait()
    r = parse_log(target, "".join(lines))
    r.exit_status = status
    r.corpus_files = corpus_files(ROOT / "fuzz" / "corpus" / target)
    r.log = relative(str(log_path))
    return r


def number(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def table(results: list[Result]) -> str:
    head = ["target", "seconds", "inputs", "inputs/s", "edges", "corpus", "findings"]
    rows = [
        [
            r.target,
            number(r.seconds),
            number(r.inputs),
            number(r.inputs_per_second),
            number(r.edges),
            number(r.corpus_files),
            r.outcome(),
        ]
        for r in results
    ]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head) - 1)]
    lines = []
    for row in [head, *rows]:
        cells = [
            # Names to the left, figures to the right, the findings last and as long as they are.
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)


def document(seconds: int, results: list[Result]) -> dict:
    return {
        "seconds_per_target": seconds,
        "ok": not any(r.failed for r in results),
        "targets": [
            {
                "target": r.target,
                "toolchain": r.toolchain,
                "exit_status": r.exit_status,
                "seconds": r.seconds,
                "inputs": r.inputs,
                "inputs_per_second": r.inputs_per_second,
                "edges": r.edges,
                "corpus_files": r.corpus_files,
                "findings": [{"kind": f.kind, "artifact": f.artifact} for f in r.findings],
                "log": r.log,
            }
            for r in results
        ],
    }


def positive_seconds(text: str) -> int:
    if not re.fullmatch(r"[1-9][0-9]*", text):
        raise argparse.ArgumentTypeError(
            f"SECONDS must be a whole number of seconds above 0, not {text!r}"
        )
    return int(text)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="just fuzz-all",
        description="Fuzz every target for SECONDS each, then print one table.",
    )
    parser.add_argument("seconds", metavar="SECONDS", type=positive_seconds)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    just = os.environ.get("JUST") or "just"
    out = sys.stderr if args.json else sys.stdout
    names = targets(FUZZ_DIR / "Cargo.toml")
    results = []
    for n, target in enumerate(names, 1):
        print(f"fuzz-all: target {n} of {len(names)}: {target}, {args.seconds} s", file=out)
        out.flush()
        results.append(run_target(just, target, args.seconds, out, FUZZ_DIR / "logs"))
        print(file=out)
    if args.json:
        json.dump(document(args.seconds, results), sys.stdout, indent=2)
        print()
    else:
        toolchains = sorted({r.toolchain for r in results if r.toolchain})
        on = ", ".join(toolchains) or "?"
        print(f"fuzz-all: {len(names)} targets, {args.seconds} s each, on {on}")
        print(table(results))
        print(f"full output: {relative(str(FUZZ_DIR / 'logs'))}/TARGET.log")
    failed = [r.target for r in results if r.failed]
    if failed:
        print(f"fuzz-all: findings or failures in: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
