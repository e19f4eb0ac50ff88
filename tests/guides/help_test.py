#!/usr/bin/python3
"""Every installed tool, and each of its subcommands, has complete --help:
a description with the exit status at the top level, and a description for
every option, positional and subcommand.

Usage: help_test.py PREFIX"""
import os
import re
import subprocess
import sys

ENTRY = re.compile(r"^  (\S.*)$")          # an option, positional or subcommand
CONTINUATION = re.compile(r"^ {10,}\S")     # its description on the next line


def help_text(cmd):
    p = subprocess.run(cmd + ["--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    if p.returncode != 0:
        return None, f"{' '.join(cmd)} --help exited with {p.returncode}"
    return p.stdout, None


def check(name, text):
    """Problems in one help text, and the subcommands it lists."""
    problems, subcommands, section = [], [], None
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if re.match(r"^(Options|Positionals|Subcommands):$", line):
            section = line[:-1]
            continue
        if not line.strip():
            continue
        if not line.startswith(" "):
            section = None
            continue
        m = ENTRY.match(line)
        if section is None or not m:
            continue
        entry = m.group(1)
        described = re.search(r"\S {2,}\S", entry) is not None or (
            i + 1 < len(lines) and CONTINUATION.match(lines[i + 1]) is not None)
        if not described:
            problems.append(f"{name}: {section.lower()} entry '{entry.strip()}' has no description")
        if section == "Subcommands":
            subcommands.append(entry.split()[0])
    return problems, subcommands


def self_check():
    """The checker finds an option without a description (so that it can fail)."""
    sample = "Options:\n  --described TEXT            says what\n  --bare TEXT\n  --long-one TEXT Excludes: --x\n" \
             "                              wrapped description\n"
    found, _ = check("sample", sample)
    assert found == ["sample: options entry '--bare TEXT' has no description"], found


def main():
    self_check()
    bindir = os.path.join(sys.argv[1], "bin")
    tools = sorted(t for t in os.listdir(bindir) if t.startswith("coreio-"))
    problems = []
    for tool in tools:
        path = os.path.join(bindir, tool)
        text, err = help_text([path])
        if err:
            problems.append(err)
            continue
        if "Exit status" not in text.split("Usage:")[0]:
            problems.append(f"{tool}: the description above 'Usage:' does not give the exit status")
        found, subs = check(tool, text)
        problems += found
        for sub in subs:
            sub_text, err = help_text([path, sub])
            if err:
                problems.append(err)
                continue
            found, _ = check(f"{tool} {sub}", sub_text)
            problems += found
        print(f"{tool}: {len(subs)} subcommand(s) checked")
    for p in problems:
        print("FAIL", p)
    if not tools:
        print(f"no coreio-* tools in {bindir}")
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
