#!/usr/bin/python3
"""Runs a Markdown guide as a test: its shell blocks, in order, in a scratch
directory, against an installed coreio prefix; checks the output it shows.

Marking (docs/guides/README.md has the user-facing summary):

  ```sh                a block that runs: bash -e -o pipefail, in the scratch
                       directory, each block in a fresh shell (files carry over,
                       shell variables and `cd` do not). Must exit 0.
  ```sh exit=N         the same, but it must exit with status N (a mistake shown
                       on purpose).
  ```sh run=no         shown only (e.g. the commands that build the project itself).
  ```LANG file=PATH    not run: its text is written to PATH (relative to the
                       scratch directory) when the runner reaches it.
  ```output            directly after a sh block: what it prints (stdout and
                       stderr together). Each line must match the next output
                       line. Variable parts: <PORT> <N> (decimal), <HEX> (0x...),
                       <NUM> (a decimal number, maybe with a fraction),
                       <TIME> (a number with an optional unit), <PATH> (no blanks),
                       <ANY> (anything on that line). A line `...` skips any
                       number of output lines (also none). Without a `...` at
                       the end, the output must end there.
  ```anything-else     shown only.

The environment: PREFIX (the installed prefix), PATH with PREFIX/bin first,
CMAKE_PREFIX_PATH and PKG_CONFIG_PATH pointing into PREFIX, LD_LIBRARY_PATH
unset, HOME the scratch directory, GUIDE_DIR the guide's own folder.

Usage: run_guide.py --prefix DIR [--scratch DIR] [--timeout S] GUIDE.md
Exit 0: every block ran and matched; 1: a block failed (the message names the
guide, the block and its line); 2: bad usage or a malformed guide.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

FENCE = re.compile(r"^(`{3,})\s*([^`]*)$")

PLACEHOLDERS = {
    "PORT": r"[0-9]{1,5}",
    "N": r"-?[0-9]+",
    "HEX": r"0x[0-9a-fA-F]+",
    "NUM": r"-?[0-9]+(?:\.[0-9]+)?(?:e[-+]?[0-9]+)?",
    "TIME": r"[0-9]+(?:\.[0-9]+)?(?:e[-+]?[0-9]+)?(?:\s?(?:ns|us|µs|ms|sec|s|min))?",
    "PATH": r"\S+",
    "ANY": r".*",
}
PLACEHOLDER = re.compile(r"<(" + "|".join(PLACEHOLDERS) + r")>")


class GuideError(Exception):
    """A malformed guide (exit 2)."""


class Block:
    def __init__(self, lang, attrs, line, text):
        self.lang = lang        # first word of the info string
        self.attrs = attrs      # key=value words after it
        self.line = line        # line number of the opening fence (1-based)
        self.text = text
        self.expected = None    # the ```output block that follows, if any


def parse_blocks(path):
    """The fenced blocks of a Markdown file, each with its info string parsed."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info, start = m.group(1), m.group(2).split(), i + 1
        body, i = [], i + 1
        while i < len(lines) and not lines[i].startswith(fence):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise GuideError(f"{path}:{start}: code block never closed")
        i += 1
        lang = info[0] if info else ""
        attrs = {}
        for word in info[1:]:
            key, eq, value = word.partition("=")
            if not eq:
                raise GuideError(f"{path}:{start}: '{word}' in the info string is not KEY=VALUE")
            attrs[key] = value
        blocks.append(Block(lang, attrs, start, "\n".join(body)))
    return blocks


def steps_of(path):
    """Runnable steps in order: sh blocks (with their expected output) and files."""
    steps, last_sh = [], None
    for b in parse_blocks(path):
        if b.lang == "output":
            if last_sh is None or last_sh.expected is not None:
                raise GuideError(f"{path}:{b.line}: an output block must follow a sh block")
            last_sh.expected = b
            continue
        last_sh = None
        if b.lang == "sh":
            unknown = set(b.attrs) - {"exit", "timeout", "run"}
            if unknown:
                raise GuideError(f"{path}:{b.line}: unknown sh block attribute(s) {sorted(unknown)}")
            if b.attrs.get("run", "yes") not in ("yes", "no"):
                raise GuideError(f"{path}:{b.line}: run= takes yes or no")
            last_sh = b
            if b.attrs.get("run") != "no":
                steps.append(b)
        elif "file" in b.attrs:
            steps.append(b)
    return steps


def literal(text):
    """A regex for literal text; a run of blanks matches any run of blanks
    (column alignment is not part of what a guide promises)."""
    return r"\s+".join(re.escape(part) for part in re.split(r"\s+", text))


def line_pattern(expected_line):
    """A regex for one expected output line, its placeholders opened up."""
    out, pos = [], 0
    for m in PLACEHOLDER.finditer(expected_line):
        out.append(literal(expected_line[pos:m.start()]))
        out.append(PLACEHOLDERS[m.group(1)])
        pos = m.end()
    out.append(literal(expected_line[pos:]))
    return re.compile("".join(out) + r"\Z")


def compare(expected, actual):
    """None when actual (lines) matches expected (lines with `...`), else
    (index of the expected line that could not be matched, what was found)."""
    pats = [None if e.strip() == "..." else line_pattern(e.rstrip()) for e in expected]
    best = [0, 0]  # deepest expected line reached, and the actual line there

    def match(ei, ai):
        if ei > best[0] or (ei == best[0] and ai > best[1]):
            best[:] = [ei, ai]
        if ei == len(pats):
            return ai == len(actual)
        if pats[ei] is None:
            return any(match(ei + 1, k) for k in range(ai, len(actual) + 1))
        return ai < len(actual) and pats[ei].match(actual[ai].rstrip()) is not None and match(ei + 1, ai + 1)

    if match(0, 0):
        return None
    ei, ai = best
    if ei == len(pats):
        return ei, f"more output: {actual[ai]!r}"
    if ei > 0 and pats[ei - 1] is None:
        return ei, "no such line in the rest of the output"
    return ei, repr(actual[ai]) if ai < len(actual) else "the end of the output"


def environment(prefix, scratch, guide):
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "COREIO_TRACE", "COREHDL_VM")}
    pc = sorted(root for root, _, _ in os.walk(prefix) if os.path.basename(root) == "pkgconfig")
    env.update(PREFIX=prefix, HOME=scratch, GUIDE_DIR=os.path.dirname(os.path.abspath(guide)),
               PATH=os.path.join(prefix, "bin") + os.pathsep + env.get("PATH", "/usr/bin:/bin"),
               CMAKE_PREFIX_PATH=prefix, PKG_CONFIG_PATH=os.pathsep.join(pc), LC_ALL="C")
    return env


def run_guide(guide, prefix, scratch, timeout):
    steps = steps_of(guide)
    if not steps:
        raise GuideError(f"{guide}: no sh block to run")
    if os.path.exists(scratch):
        shutil.rmtree(scratch)
    os.makedirs(scratch)
    env = environment(prefix, scratch, guide)
    name = os.path.relpath(guide)
    n_sh = 0
    for step in steps:
        if step.lang != "sh":
            target = os.path.join(scratch, step.attrs["file"])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="utf-8") as f:
                f.write(step.text + "\n")
            continue
        n_sh += 1
        where = f"{name}:{step.line}: sh block {n_sh}"
        want_rc = int(step.attrs.get("exit", "0"))
        limit = float(step.attrs.get("timeout", timeout))
        print(f"--- {where}\n{step.text}", flush=True)
        try:
            # A process group of its own, so that whatever the block left running goes with it.
            proc = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", step.text], cwd=scratch, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                out, _ = proc.communicate(timeout=limit)
            finally:
                try:
                    os.killpg(proc.pid, 9)
                except ProcessLookupError:
                    pass
        except subprocess.TimeoutExpired:
            print(f"FAIL {where}: did not finish within {limit:g} s")
            return 1
        text = out.decode("utf-8", "replace")
        print(text, end="" if text.endswith("\n") or not text else "\n")
        if proc.returncode != want_rc:
            print(f"FAIL {where}: exit status {proc.returncode}, the guide expects {want_rc}")
            return 1
        if step.expected is not None:
            lines = text.split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            expected = step.expected.text.split("\n")
            diff = compare(expected, lines)
            if diff is not None:
                ei, found = diff
                if ei < len(expected):
                    print(f"FAIL {name}:{step.expected.line + 1 + ei}: output of sh block {n_sh} "
                          f"(line {step.line}): expected {expected[ei]!r}, got {found}")
                else:
                    print(f"FAIL {name}:{step.expected.line + 1 + ei}: output of sh block {n_sh} "
                          f"(line {step.line}): expected the end of the output, got {found}")
                return 1
    print(f"PASS {name}: {n_sh} sh blocks")
    return 0


def main():
    p = argparse.ArgumentParser(description="Run the shell blocks of a Markdown guide and check their output.")
    p.add_argument("--prefix", required=True, help="the installed coreio prefix")
    p.add_argument("--scratch", help="scratch directory (emptied first; default: a folder beside the guide name in /tmp)")
    p.add_argument("--timeout", type=float, default=120, help="seconds per block unless it says timeout=S")
    p.add_argument("guide")
    a = p.parse_args()
    scratch = a.scratch or os.path.join("/tmp", "coreio-guide-" + os.path.splitext(os.path.basename(a.guide))[0])
    try:
        return run_guide(a.guide, os.path.abspath(a.prefix), os.path.abspath(scratch), a.timeout)
    except (GuideError, OSError) as e:
        print(f"run_guide: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
