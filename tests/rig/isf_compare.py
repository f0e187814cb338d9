#!/usr/bin/env python3
"""Compares pmem's symbol table with a DWARF-derived one (dwarf2json) of the same kernel.

    isf_compare.py OURS.json[.xz] DWARF.json[.xz] [--symbols FILE] [--json | --summary]

Reports, for the named struct/union types both have, those whose size or fields differ (offset,
kind, bitfield position); types only DWARF has; and, for the symbols listed in FILE (one per
line; default: every symbol DWARF types), those we leave untyped or type differently. Exit 1 if
a listed symbol is untyped or typed differently, or a common type's size differs.
"""
import json, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from globals import load  # noqa: E402


def norm(t, doc):
    """A type descriptor with names of anonymous types dropped (their names differ by tool)."""
    if not isinstance(t, dict):
        return t
    k = t.get("kind")
    if k in ("struct", "union", "enum"):
        n = t.get("name", "")
        return {"kind": k, "name": None if n.startswith("unnamed") else n}
    if k in ("pointer", "array", "bitfield"):
        out = {kk: vv for kk, vv in t.items() if kk not in ("subtype", "type")}
        sub = t.get("subtype", t.get("type"))
        out["sub"] = norm(sub, doc)
        return out
    if k == "base":
        return {"kind": "base", "name": t.get("name")}
    return {"kind": k}


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    opts = sys.argv[1:]
    ours, dwarf = load(args[0]), load(args[1])
    wanted = None
    if "--symbols" in opts:
        with open(opts[opts.index("--symbols") + 1]) as f:
            wanted = [l.strip() for l in f if l.strip()]
    ut_o, ut_d = ours["user_types"], dwarf["user_types"]
    named = [n for n in ut_d if not n.startswith("unnamed")]
    missing = sorted(n for n in named if n not in ut_o)
    size_diff, field_diff = [], []
    for n in named:
        if n not in ut_o:
            continue
        a, b = ut_o[n], ut_d[n]
        if a["size"] != b["size"]:
            size_diff.append((n, a["size"], b["size"]))
            continue
        for fname, fd in b["fields"].items():
            if fname.startswith("unnamed_field"):
                continue
            fo = a["fields"].get(fname)
            if fo is None:
                field_diff.append((n, fname, "missing"))
            elif fo["offset"] != fd["offset"] or norm(fo["type"], ours) != norm(fd["type"], dwarf):
                field_diff.append((n, fname, f"{fo['offset']} {norm(fo['type'], ours)} vs {fd['offset']} {norm(fd['type'], dwarf)}"))
    sym_o, sym_d = ours["symbols"], dwarf["symbols"]
    if wanted is None:
        wanted = [s for s, v in sym_d.items() if "type" in v]
    untyped, differ, absent = [], [], []
    for s in wanted:
        if s not in sym_d or "type" not in sym_d[s]:
            absent.append(s)
            continue
        o = sym_o.get(s)
        if o is None or "type" not in o:
            untyped.append(s)
        elif norm(o["type"], ours) != norm(sym_d[s]["type"], dwarf):
            differ.append((s, norm(o["type"], ours), norm(sym_d[s]["type"], dwarf)))
    report = {
        "types_dwarf_named": len(named), "types_missing": len(missing), "types_size_differs": size_diff,
        "fields_differ": len(field_diff), "symbols_checked": len(wanted) - len(absent),
        "symbols_untyped": untyped, "symbols_typed_differently": differ, "symbols_not_in_dwarf": absent,
    }
    if "--json" in opts:
        print(json.dumps(report, indent=1))
    elif "--summary" in opts:
        print(f"{len(named) - len(missing)}/{len(named)} named types, {len(size_diff)} sizes differ "
              f"({', '.join(d[0] for d in size_diff) or 'none'}), {len(field_diff)} fields differ; "
              f"{report['symbols_checked'] - len(untyped)}/{report['symbols_checked']} plugin symbols typed, "
              f"{len(differ)} differently ({', '.join(d[0] for d in differ) or 'none'})")
    else:
        print(f"named types in DWARF: {len(named)}; missing here: {len(missing)} {missing[:20]}")
        print(f"size differs: {len(size_diff)} {size_diff[:20]}")
        print(f"fields differ: {len(field_diff)}")
        for d in field_diff[:40]:
            print("  ", d)
        print(f"symbols checked: {report['symbols_checked']}; untyped: {len(untyped)} {untyped[:40]}")
        print(f"typed differently: {len(differ)}")
        for d in differ[:40]:
            print("  ", d)
        if absent:
            print(f"not typed by DWARF either: {absent}")
    sys.exit(1 if untyped or differ or size_diff else 0)


main()
