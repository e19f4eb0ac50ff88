#!/usr/bin/python3
"""The guide runner (docs/guides/run_guide.py) on guides written to fail:
a broken step must fail, naming the guide, the block and the line.

Usage: runner_test.py RUN_GUIDE WORK_DIR [PREFIX REAL_GUIDE]
With PREFIX and REAL_GUIDE, also breaks a copy of a real guide (its first
expected output changed) and runs it against the installed prefix."""
import os
import re
import subprocess
import sys
import unittest

RUNNER, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
PREFIX, REAL = (os.path.abspath(sys.argv[3]), os.path.abspath(sys.argv[4])) if len(sys.argv) > 4 else (None, None)
FENCE = "```"

GOOD = f"""# A guide

{FENCE}c file=hello.txt
hello from a file
{FENCE}

{FENCE}sh
cat hello.txt
echo "listening on 127.0.0.1:$((40000 + 17))"
echo "took 12.5 ms"
seq 1 5
echo end
{FENCE}

{FENCE}output
hello from a file
listening on 127.0.0.1:<PORT>
took <TIME>
...
end
{FENCE}

{FENCE}sh exit=3
echo oops >&2; exit 3
{FENCE}

{FENCE}output
oops
{FENCE}

{FENCE}cmake
not run: shown only
{FENCE}

{FENCE}sh run=no
exit 1
{FENCE}
"""


def write(name, text):
    path = os.path.join(WORK, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def run(guide, prefix=None, timeout=None):
    cmd = [sys.executable, RUNNER, "--prefix", prefix or WORK, "--scratch", os.path.join(WORK, "scratch"), guide]
    if timeout:
        cmd[2:2] = ["--timeout", str(timeout)]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    return p.returncode, p.stdout


def line_of(text, needle):
    return text.split("\n").index(needle) + 1


class RunnerTest(unittest.TestCase):
    def test_good_guide_passes(self):
        rc, out = run(write("good.md", GOOD))
        self.assertEqual(rc, 0, out)
        self.assertIn("PASS", out)

    def test_failing_command_names_guide_block_and_line(self):
        text = GOOD.replace("echo end\n", "false\necho end\n")
        rc, out = run(write("failing-command.md", text))
        self.assertEqual(rc, 1, out)
        line = line_of(text, FENCE + "sh")
        self.assertIn(f"FAIL failing-command.md:{line}: sh block 1: exit status 1, the guide expects 0", out)

    def test_changed_expected_output_names_the_line(self):
        text = GOOD.replace("took <TIME>", "took <TIME> in total")
        rc, out = run(write("changed-output.md", text))
        self.assertEqual(rc, 1, out)
        line = line_of(text, "took <TIME> in total")
        self.assertRegex(out, rf"FAIL changed-output.md:{line}: output of sh block 1 \(line \d+\): "
                              r"expected 'took <TIME> in total', got 'took 12.5 ms'")

    def test_output_past_the_expected_end_fails(self):
        text = GOOD.replace("...\nend\n", "...\n4\n")
        rc, out = run(write("extra-output.md", text))
        self.assertEqual(rc, 1, out)
        self.assertIn("expected the end of the output", out)

    def test_mistake_block_that_succeeds_fails(self):
        text = GOOD.replace("echo oops >&2; exit 3", "echo oops >&2")
        rc, out = run(write("no-mistake.md", text))
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"FAIL no-mistake.md:\d+: sh block 2: exit status 0, the guide expects 3")

    def test_hanging_block_is_stopped(self):
        text = GOOD.replace("echo end\n", "sleep 30\necho end\n")
        rc, out = run(write("hang.md", text), timeout=1)
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"FAIL hang.md:\d+: sh block 1: did not finish within 1 s")

    def test_malformed_guide_is_an_error(self):
        rc, out = run(write("unclosed.md", GOOD + FENCE + "sh\necho never closed\n"))
        self.assertEqual(rc, 2, out)
        self.assertIn("code block never closed", out)
        rc, out = run(write("stray-output.md", FENCE + "output\nx\n" + FENCE + "\n"))
        self.assertEqual(rc, 2, out)
        self.assertIn("an output block must follow a sh block", out)

    @unittest.skipUnless(REAL, "no real guide given")
    def test_real_guide_with_a_changed_output_fails(self):
        """A CLI change that the guide does not follow: the first expected
        output line that is not a placeholder or `...` changes; the guide is
        cut after that block so the test stays short."""
        with open(REAL, encoding="utf-8") as f:
            lines = f.read().split("\n")
        start = lines.index(FENCE + "output")
        end = lines.index(FENCE, start + 1)
        victim = next(i for i in range(start + 1, end) if lines[i].strip() not in ("", "...") and "<" not in lines[i])
        original = lines[victim]
        lines[victim] = original + " (changed)"
        broken = os.path.join(os.path.dirname(os.path.abspath(REAL)), ".broken-" + os.path.basename(REAL))
        try:
            with open(broken, "w", encoding="utf-8") as f:
                f.write("\n".join(lines[: end + 1]) + "\n")
            rc, out = run(broken, prefix=PREFIX)
        finally:
            os.remove(broken)
        self.assertEqual(rc, 1, out)
        self.assertIn(f"{os.path.basename(broken)}:{victim + 1}: output of sh block", out)
        self.assertIn(f"expected {original + ' (changed)'!r}, got {original!r}", out)


if __name__ == "__main__":
    os.makedirs(WORK, exist_ok=True)
    os.chdir(WORK)
    unittest.main(argv=[sys.argv[0], "-v"])
