"""Jane Austen's six novels from Debian's r-cran-janeaustenr, read without R.

The package stores its data as an R lazy-load database (data/Rdata.rdx + Rdata.rdb): the .rdx
index maps each variable to (offset, length) in the .rdb, where each record is a 4-byte
big-endian length followed by a zlib stream holding one serialized R object (a character
vector, one element per printed line). The `rdata` PyPI package parses those objects.

Lines are unwrapped into paragraphs (blank lines separate paragraphs in the source); each
novel becomes one document whose paragraphs are separated by a single newline.
"""
import struct
import warnings
import zlib

import rdata

RDATA = "/usr/lib/R/site-library/janeaustenr/data/Rdata"
NOVELS = ["sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey", "persuasion"]


def _variables(base):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        index = rdata.conversion.convert(rdata.parser.parse_file(base + ".rdx"))
    return {str(k): (int(v[0]), int(v[1])) for k, v in index["variables"].items()}


def _read(base, offset, length):
    with open(base + ".rdb", "rb") as f:
        f.seek(offset)
        record = f.read(length)
    size = struct.unpack(">I", record[:4])[0]
    raw = zlib.decompress(record[4:])
    if len(raw) != size:
        raise ValueError(f"record at {offset}: {len(raw)} bytes, header says {size}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [str(x) for x in rdata.conversion.convert(rdata.parser.parse_data(raw))]


def paragraphs(lines):
    out, cur = [], []
    for line in lines:
        line = line.strip()
        if line:
            cur.append(line)
        elif cur:
            out.append(" ".join(cur))
            cur = []
    if cur:
        out.append(" ".join(cur))
    return out


def novels(base=RDATA):
    """Returns {name: [paragraph, ...]} for the six novels, in a fixed order."""
    variables = _variables(base)
    missing = [n for n in NOVELS if n not in variables]
    if missing:
        raise SystemExit(f"{base}: missing {missing}; install Debian's r-cran-janeaustenr")
    return {n: paragraphs(_read(base, *variables[n])) for n in NOVELS}


def split(docs, heldout_fraction=0.05):
    """Training text and held-out text: the last `heldout_fraction` of each novel's paragraphs is held out."""
    train, held = [], []
    for name in NOVELS:
        ps = docs[name]
        cut = int(len(ps) * (1 - heldout_fraction))
        train.append("\n".join(ps[:cut]))
        held.append("\n".join(ps[cut:]))
    return train, held
