"""Tests of campaign.py (`just fuzz-all`): python3 -m unittest discover -s fuzz

CLEAN and CRASH are cut from real `just fuzz` runs (CRASH from `datagram` with a panic planted
on purpose); TIMEOUT_AND_SLOW and BUILD_ERROR follow libFuzzer's and cargo's formats. The
end-to-end tests run the campaign against a stand-in for `just`.
"""

import contextlib
import io
import json
import os
import stat
import tempfile
import textwrap
import unittest
from pathlib import Path
from unittest import mock

import campaign

CLEAN = """\
just fuzz: datagram for 5 s on the stable toolchain with RUSTC_BOOTSTRAP=1 (rustc 1.95.0 (59807616e 2026-04-14))
    Finished `release` profile [optimized + debuginfo] target(s) in 0.03s
INFO: Seed: 4174288591
INFO:        8 files found in fuzz/corpus/datagram
#2\tINITED cov: 109 ft: 109 corp: 1/1b exec/s: 0 rss: 45Mb
\tNEW_FUNC[1/2]: 0x561c36600c40 in core::ptr::drop_in_place::<std::io::error::Error>
#18\tNEW    cov: 119 ft: 131 corp: 2/2b lim: 4 exec/s: 0 rss: 45Mb L: 1/1 MS: 1 ChangeByte-
#262144\tpulse  cov: 1201 ft: 5011 corp: 2901/80Kb lim: 4096 exec/s: 65536 rss: 470Mb
#388989\tDONE   cov: 1234 ft: 5120 corp: 2946/83Kb lim: 4096 exec/s: 64831 rss: 482Mb
###### Recommended dictionary. ######
"\\001\\000\\000\\005" # Uses: 20
###### End of recommended dictionary. ######
Done 388989 runs in 6 second(s)
stat::number_of_executed_units: 388989
stat::average_exec_per_sec:     64831
stat::new_units_added:          2938
stat::slowest_unit_time_sec:    0
stat::peak_rss_mb:              482

#388989\tDONE   cov: 1234 ft: 5120 corp: 2946/83Kb lim: 4096 exec/s: 64831 rss: 482Mb
Done 388989 runs in 6 second(s)
"""

CRASH = """\
just fuzz: datagram for 10 s on the stable toolchain with RUSTC_BOOTSTRAP=1 (rustc 1.95.0 (59807616e 2026-04-14))
INFO:        8 files found in fuzz/corpus/datagram
INFO: seed corpus: files: 8 min: 20b max: 53b total: 251b rss: 45Mb
#9\tINITED cov: 467 ft: 518 corp: 8/251b exec/s: 0 rss: 45Mb
#1024\tNEW    cov: 1318 ft: 3302 corp: 260/6010b lim: 43 exec/s: 0 rss: 190Mb L: 9/40 MS: 1 ChangeBit-

thread '<unnamed>' (21712) panicked at fuzz_targets/datagram.rs:14:5:
planted
==21712== ERROR: libFuzzer: deadly signal
SUMMARY: libFuzzer: deadly signal
MS: 1 CMP- DE: "FUZ"-; base unit: fd1984e29cf5cb9d4d309de2e5b991092f5b004d
artifact_prefix='/ROOT/fuzz/artifacts/datagram/'; Test unit written to /ROOT/fuzz/artifacts/datagram/crash-2ffca161
Base64: RlVahAEAA/8AdMM=
stat::number_of_executed_units: 3114
stat::average_exec_per_sec:     0
stat::new_units_added:          268
stat::slowest_unit_time_sec:    0
stat::peak_rss_mb:              191

Failing input:

\tfuzz/artifacts/datagram/crash-2ffca161

Reproduce with:

\tcargo fuzz run datagram fuzz/artifacts/datagram/crash-2ffca161

just fuzz: datagram stopped early: a finding (see above and fuzz/artifacts/datagram/) or a build error
"""

TIMEOUT_AND_SLOW = """\
#2\tINITED cov: 50 ft: 50 corp: 1/1b exec/s: 0 rss: 45Mb
Slowest unit: 9 s:
artifact_prefix='/ROOT/fuzz/artifacts/storage_files/'; Test unit written to /ROOT/fuzz/artifacts/storage_files/slow-unit-aa
==77== ERROR: libFuzzer: timeout after 10 seconds
artifact_prefix='/ROOT/fuzz/artifacts/storage_files/'; Test unit written to /ROOT/fuzz/artifacts/storage_files/timeout-bb
"""

BUILD_ERROR = """\
just fuzz: datagram for 30 s on the stable toolchain with RUSTC_BOOTSTRAP=1 (rustc 1.95.0)
error[E0425]: cannot find value `x` in this scope
error: could not compile `raft-lab-fuzz` (bin "datagram") due to 1 previous error
"""


class ParseLog(unittest.TestCase):
    def test_clean_run(self):
        r = campaign.parse_log("datagram", CLEAN)
        self.assertEqual(r.inputs, 388989)
        self.assertEqual(r.seconds, 6)
        self.assertEqual(r.inputs_per_second, 64831)
        self.assertEqual(r.edges, 1234)
        self.assertEqual(r.findings, [])
        self.assertIn("stable toolchain with RUSTC_BOOTSTRAP=1", r.toolchain)
        self.assertFalse(r.failed)
        self.assertEqual(r.outcome(), "none")

    def test_crash_has_stats_and_one_artifact(self):
        with mock.patch.object(campaign, "ROOT", Path("/ROOT")):
            r = campaign.parse_log("datagram", CRASH)
        self.assertEqual(r.inputs, 3114)
        self.assertIsNone(r.seconds)  # no `Done` line after a crash
        self.assertEqual(r.inputs_per_second, 0)  # libFuzzer's figure, within its first second
        self.assertEqual(r.edges, 1318)
        self.assertEqual(
            r.findings, [campaign.Finding("crash", "fuzz/artifacts/datagram/crash-2ffca161")]
        )
        self.assertTrue(r.failed)
        self.assertEqual(r.outcome(), "crash: fuzz/artifacts/datagram/crash-2ffca161")

    def test_timeout_is_a_finding_and_a_slow_unit_is_not(self):
        with mock.patch.object(campaign, "ROOT", Path("/ROOT")):
            r = campaign.parse_log("storage_files", TIMEOUT_AND_SLOW)
        self.assertEqual(
            r.findings,
            [campaign.Finding("timeout", "fuzz/artifacts/storage_files/timeout-bb")],
        )
        self.assertIsNone(r.inputs)
        self.assertIsNone(r.inputs_per_second)

    def test_build_error_is_a_failure_without_figures(self):
        r = campaign.parse_log("datagram", BUILD_ERROR)
        r.exit_status, r.log = 101, "fuzz/logs/datagram.log"
        self.assertEqual((r.inputs, r.edges, r.findings), (None, None, []))
        self.assertTrue(r.failed)
        self.assertEqual(
            r.outcome(), "did not finish (exit 101, no artifact): see fuzz/logs/datagram.log"
        )

    def test_quiet_lines(self):
        shown = [line for line in CLEAN.splitlines() if not campaign.QUIET.search(line)]
        self.assertFalse(any("NEW" in line or "# Uses:" in line for line in shown))
        for kept in ["INITED", "pulse", "DONE", "Done 388989", "stat::peak_rss_mb", "just fuzz:"]:
            self.assertTrue(any(kept in line for line in shown), kept)
        # Nothing of a crash report is hidden.
        self.assertEqual(
            [line for line in CRASH.splitlines() if campaign.QUIET.search(line)],
            [CRASH.splitlines()[4]],
        )


class Table(unittest.TestCase):
    def test_columns_line_up(self):
        a = campaign.Result("datagram", seconds=120, inputs=2_500_000, inputs_per_second=20833,
                            edges=7500, corpus_files=900)
        b = campaign.Result("proxy_command", inputs=10, inputs_per_second=5, edges=3,
                            corpus_files=18, findings=[campaign.Finding("crash", "fuzz/x")])
        lines = campaign.table([a, b]).splitlines()
        self.assertEqual(len(lines), 3)
        self.assertTrue(lines[0].startswith("target         seconds"))
        self.assertIn("2,500,000", lines[1])
        self.assertTrue(lines[1].endswith("  none"))
        self.assertTrue(lines[2].endswith("  crash: fuzz/x"))
        self.assertIn("      ?  ", lines[2])  # seconds unknown after a crash
        # The findings column starts at one place on every line.
        self.assertEqual(lines[0].index("findings"), lines[1].index("none"))


FAKE_JUST = textwrap.dedent("""\
    #!/usr/bin/env python3
    # Stands in for `just fuzz TARGET SECONDS`: a clean run, except for control_frame.
    import os, sys
    _, recipe, target, seconds = sys.argv
    assert recipe == "fuzz"
    corpus = os.path.join("fuzz", "corpus", target)
    os.makedirs(corpus, exist_ok=True)
    for n in range(3):
        open(os.path.join(corpus, f"seed-{n}"), "w").close()
    if target == "control_frame":
        print(CRASH.replace("/ROOT", os.getcwd()).replace("datagram", target))
        sys.exit(77)
    print(CLEAN.replace("datagram", target).replace("in 6 second", f"in {seconds} second"))
""")


class Campaign(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name).resolve()
        fuzz = self.root / "fuzz"
        fuzz.mkdir()
        (fuzz / "Cargo.toml").write_text(
            (Path(campaign.__file__).parent / "Cargo.toml").read_text()
        )
        just = self.root / "just"
        just.write_text(
            FAKE_JUST.replace("import os, sys", f"import os, sys\nCLEAN = {CLEAN!r}\nCRASH = {CRASH!r}")
        )
        just.chmod(just.stat().st_mode | stat.S_IXUSR)
        for name, value in [("ROOT", self.root), ("FUZZ_DIR", fuzz)]:
            patcher = mock.patch.object(campaign, name, value)
            patcher.start()
            self.addCleanup(patcher.stop)
        patcher = mock.patch.dict(os.environ, {"JUST": str(just)})
        patcher.start()
        self.addCleanup(patcher.stop)

    def run_main(self, *args):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = campaign.main(list(args))
        return status, out.getvalue(), err.getvalue()

    def test_every_target_then_a_table_and_exit_1_on_a_finding(self):
        status, out, err = self.run_main("7")
        self.assertEqual(status, 1)
        self.assertIn("findings or failures in: control_frame", err)
        table = out[out.index("target  "):].splitlines()
        self.assertEqual(
            [line.split()[0] for line in table[1:5]],
            ["datagram", "control_frame", "proxy_command", "storage_files"],
        )
        self.assertIn("crash: fuzz/artifacts/control_frame/crash-2ffca161", table[2])
        self.assertIn("388,989", table[3])
        self.assertNotIn("NEW_FUNC", out)  # the terminal is spared
        log = (self.root / "fuzz" / "logs" / "datagram.log").read_text()
        self.assertIn("NEW_FUNC", log)  # the log is whole

    def test_json(self):
        status, out, err = self.run_main("--json", "7")
        self.assertEqual(status, 1)
        doc = json.loads(out)
        self.assertFalse(doc["ok"])
        self.assertEqual(doc["seconds_per_target"], 7)
        by_name = {t["target"]: t for t in doc["targets"]}
        self.assertEqual(set(by_name), {"datagram", "control_frame", "proxy_command", "storage_files"})
        d = by_name["datagram"]
        self.assertEqual(
            (d["seconds"], d["inputs"], d["inputs_per_second"], d["edges"], d["corpus_files"]),
            (7, 388989, 64831, 1234, 3),
        )
        self.assertEqual(d["findings"], [])
        c = by_name["control_frame"]
        self.assertEqual(c["exit_status"], 77)
        self.assertEqual(
            c["findings"],
            [{"kind": "crash", "artifact": "fuzz/artifacts/control_frame/crash-2ffca161"}],
        )
        self.assertIn("just fuzz: datagram", err)  # the fuzzers' output is on stderr

    def test_all_clean_exits_0(self):
        fake = Path(os.environ["JUST"])
        fake.write_text(fake.read_text().replace('target == "control_frame"', "False"))
        status, out, _ = self.run_main("3")
        self.assertEqual(status, 0)
        self.assertNotIn("crash", out[out.index("target  "):])

    def test_bad_arguments_exit_2_and_run_nothing(self):
        for args in [[], ["0"], ["ten"], ["5", "--csv"], ["-5"]]:
            status, out, _ = self.run_main(*args)
            self.assertEqual(status, 2, args)
            self.assertFalse((self.root / "fuzz" / "logs").exists(), args)


if __name__ == "__main__":
    unittest.main()
