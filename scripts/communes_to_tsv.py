#!/usr/bin/env python3
"""Convert @etalab/decoupage-administratif JSON data into Repère's compact TSV files.

Usage: communes_to_tsv.py PACKAGE_DIR OUTPUT_DIR

PACKAGE_DIR is the unpacked npm package (containing package.json and data/).
Writes OUTPUT_DIR/communes.tsv and OUTPUT_DIR/epci.tsv (see core/data/README.md).
Standard library only.
"""

import json
import os
import re
import sys

KEPT_TYPES = ("commune-actuelle", "arrondissement-municipal")
CODE_RE = re.compile(r"^[0-9][0-9AB][0-9]{3}$")
EPCI_RE = re.compile(r"^[0-9]{9}$")
POSTCODE_RE = re.compile(r"^[0-9]{5}$")
LICENCE = "Licence Ouverte / Open Licence (Etalab)"


def clean(value):
    """Collapse whitespace so that no field can carry a tab, CR or newline."""
    return " ".join(str(value).split())


def write_tsv(path, comment, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as out:
        out.write(comment + "\n")
        for row in rows:
            for field in row:
                if "\t" in field or "\n" in field or "\r" in field:
                    raise ValueError(f"bad field {field!r} in {row!r}")
            out.write("\t".join(row) + "\n")
    os.replace(tmp, path)


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    pkg_dir, out_dir = argv[1], argv[2]
    with open(os.path.join(pkg_dir, "package.json"), encoding="utf-8") as f:
        pkg = json.load(f)
    with open(os.path.join(pkg_dir, "data", "communes.json"), encoding="utf-8") as f:
        communes = json.load(f)
    with open(os.path.join(pkg_dir, "data", "epci.json"), encoding="utf-8") as f:
        epcis = json.load(f)

    source = f"{pkg['name']} {pkg['version']}"

    # EPCI table and commune -> EPCI membership.
    epci_names = {}
    epci_of = {}
    for epci in epcis:
        code = clean(epci["code"])
        if not EPCI_RE.match(code):
            raise ValueError(f"unexpected EPCI code {code!r}")
        epci_names[code] = clean(epci["nom"])
        for member in epci.get("membres", []):
            mcode = member["code"]
            if mcode in epci_of and epci_of[mcode] != code:
                raise ValueError(f"commune {mcode} in two EPCIs")
            epci_of[mcode] = code

    kept = [c for c in communes if c.get("type") in KEPT_TYPES]
    rows = []
    seen = set()
    for c in kept:
        code = clean(c["code"])
        if not CODE_RE.match(code):
            raise ValueError(f"unexpected commune code {code!r}")
        if code in seen:
            raise ValueError(f"duplicate commune code {code}")
        seen.add(code)
        postcodes = sorted({clean(p) for p in c.get("codesPostaux") or []})
        for p in postcodes:
            if not POSTCODE_RE.match(p):
                raise ValueError(f"unexpected postcode {p!r} for {code}")
        epci = epci_of.get(code, "")
        if not epci and c["type"] == "arrondissement-municipal":
            # Paris/Lyon/Marseille arrondissements belong to their parent
            # commune's EPCI (the DGCL list only names the parent commune).
            epci = epci_of.get(c.get("commune", ""), "")
        rows.append([code, clean(c["nom"]), clean(c["departement"]), ",".join(postcodes), epci])
    rows.sort(key=lambda r: r[0])

    used = {r[4] for r in rows if r[4]}
    epci_rows = sorted([code, name] for code, name in epci_names.items() if code in used)

    os.makedirs(out_dir, exist_ok=True)
    write_tsv(
        os.path.join(out_dir, "communes.tsv"),
        f"# source: {source} | licence: {LICENCE} | columns: code, nom, departement, codes_postaux, epci",
        rows,
    )
    write_tsv(
        os.path.join(out_dir, "epci.tsv"),
        f"# source: {source} | licence: {LICENCE} | columns: code, nom",
        epci_rows,
    )
    print(f"{len(rows)} communes, {len(epci_rows)} EPCI written to {out_dir} from {source}")


if __name__ == "__main__":
    main(sys.argv)
