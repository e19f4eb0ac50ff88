#!/usr/bin/python3
"""docs/reference.md against the sources it describes:
  - every message of proto/coreio_trace.proto has a "### Name" section whose
    table lists exactly its fields;
  - the script command table lists exactly the commands the mock VM's parser
    knows (its "known: ..." list in mockvm/src/script.cpp);
  - the rule table lists exactly the rule kinds the replayer's parser takes.

Usage: reference_test.py SOURCE_DIR"""
import os
import re
import sys


def proto_messages(text):
    """{message: [fields]} of a .proto file (nested enums skipped)."""
    text = re.sub(r"//[^\n]*", "", text)
    messages = {}
    for m in re.finditer(r"\bmessage\s+(\w+)\s*\{", text):
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        body = text[m.end():i - 1]
        body = re.sub(r"\benum\s+\w+\s*\{[^}]*\}", "", body)       # nested enums
        body = re.sub(r"\boneof\s+\w+\s*\{", "", body).replace("}", "")
        fields = re.findall(r"^\s*(?:repeated\s+)?(?:map<[^>]+>|[\w.]+)\s+(\w+)\s*=\s*\d+\s*;", body, re.M)
        messages[m.group(1)] = fields
    return messages


def sections(doc):
    """{heading: text} for the ### sections of the reference."""
    parts = re.split(r"^### (\w+)\s*$", doc, flags=re.M)
    return {parts[i]: parts[i + 1].split("\n## ")[0] for i in range(1, len(parts), 2)}


def table_keys(text):
    """The backquoted names in the first column of a Markdown table."""
    keys = []
    for line in text.split("\n"):
        m = re.match(r"^\|\s*(.+?)\s*\|", line)
        if m and not set(m.group(1)) <= set("-: "):
            keys += re.findall(r"`([^`]+)`", m.group(1))
    return keys


def section(doc, title):
    m = re.search(r"^## " + re.escape(title) + r"\s*$(.*?)(?=^## |\Z)", doc, re.M | re.S)
    if not m:
        raise KeyError(title)
    return m.group(1)


def main():
    src = sys.argv[1]
    read = lambda *p: open(os.path.join(src, *p), encoding="utf-8").read()
    doc = read("docs", "reference.md")
    problems = []

    messages = proto_messages(read("proto", "coreio_trace.proto"))
    documented = sections(section(doc, "Trace records"))
    for name, fields in messages.items():
        if name not in documented:
            problems.append(f"message {name} has no '### {name}' section")
            continue
        listed = table_keys(documented[name])
        for f in fields:
            if f not in listed:
                problems.append(f"{name}.{f} is not in the reference")
        for f in listed:
            if f not in fields:
                problems.append(f"{name}: the reference lists '{f}', which the schema does not have")
    for name in documented:
        if name not in messages:
            problems.append(f"section '### {name}' names no message of the schema")

    known = re.search(r"\(known: ([a-z_ ]+)\)", read("mockvm", "src", "script.cpp").replace('"\n           "', ""))
    if not known:
        problems.append("mockvm/src/script.cpp: no 'known: ...' command list found")
    else:
        commands = set(known.group(1).split())
        rows = [k for k in table_keys(section(doc, "Mock VM scripts")) if re.fullmatch(r"[a-z_]+", k)]
        listed = {k for k in rows if k not in ("expect", "rising", "falling")}
        for c in sorted(commands - listed):
            problems.append(f"script command '{c}' is not in the reference")
        for c in sorted(listed - commands):
            problems.append(f"the reference lists script command '{c}', which the parser does not know")

    kinds = set(re.findall(r'word == "(\w+)"', read("replayer", "src", "rules.cpp")))
    listed = {k.split()[0] for k in table_keys(section(doc, "Rule files"))}
    if kinds != listed:
        problems.append(f"rule kinds: parser {sorted(kinds)}, reference {sorted(listed)}")

    for p in problems:
        print("FAIL", p)
    print(f"{len(messages)} messages, {sum(map(len, messages.values()))} fields checked")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
