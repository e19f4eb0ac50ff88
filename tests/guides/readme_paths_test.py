#!/usr/bin/python3
"""Every build-tree path the README names (build/...) is where the build puts
it: checked against this build (after a full build, as CI runs ctest). A path
under a part this build left out (its folder was never configured, e.g.
build/bench without COREIO_BUILD_BENCH) is reported as skipped.

Usage: readme_paths_test.py README.md BUILD_DIR"""
import os
import re
import sys


def main():
    readme, build = sys.argv[1], sys.argv[2]
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    missing, checked = [], 0
    for n, line in enumerate(text.split("\n"), 1):
        for m in re.finditer(r"(?<![\w/.$-])build/([A-Za-z0-9_./-]+)", line):
            rel = m.group(1).rstrip(".")
            parts = rel.split("/")
            configured = os.path.join(build, *parts[:-1]) if len(parts) > 1 else build
            if not os.path.isdir(configured):
                print(f"{readme}:{n}: build/{rel}: skipped ({configured} not configured in this build)")
                continue
            checked += 1
            if not os.path.exists(os.path.join(build, rel)):
                missing.append(f"{readme}:{n}: build/{rel} is not in the build tree ({os.path.join(build, rel)})")
    for m in missing:
        print(m)
    print(f"{checked} build-tree paths checked, {len(missing)} missing")
    return 1 if missing or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
