#!/usr/bin/env python3
"""serverec.py EXPORT PATHINFO.json > STREAM

Turns a `nix-store --export` of a closure (dependencies first) into the
byte stream a client of `nix-store --serve --write` sends to upload it:
the greeting (protocol 2.5) and one AddToStoreNar per path, back to back.
bench/run.sh pipes it through OpenSSH into a fresh target ("ssh|serve"):
the same import on the target as crebuild's, with no work on the deployer
but encryption.  The replies are not read (nothing waits for them).

PATHINFO.json is `nix path-info --json` of the same paths (narHash etc.).
"""
import io
import json
import struct
import sys

EXPORT_MAGIC = 0x4558494E


class Reader:
    def __init__(self, f):
        self.f = f

    def read(self, n):
        b = self.f.read(n)
        if len(b) != n:
            sys.exit("serverec: export truncated")
        return b

    def u64(self):
        return struct.unpack("<Q", self.read(8))[0]

    def string(self):
        n = self.u64()
        b = self.read(n)
        self.read((8 - n % 8) % 8)
        return b


def copy_node(r, out):
    """Copy one NAR node (after its "(") through to out, return nothing."""
    def tok():
        n = r.u64()
        b = r.read(n)
        pad = r.read((8 - n % 8) % 8)
        out.write(struct.pack("<Q", n) + b + pad)
        return b

    if tok() != b"type":
        sys.exit("serverec: bad NAR")
    kind = tok()
    if kind == b"regular":
        t = tok()
        if t == b"executable":
            tok()
            t = tok()
        if t != b"contents":
            sys.exit("serverec: bad NAR")
        n = r.u64()
        out.write(struct.pack("<Q", n))
        left = n + (8 - n % 8) % 8
        while left > 0:
            k = min(left, 1 << 20)
            out.write(r.read(k))
            left -= k
        tok()  # ")"
    elif kind == b"symlink":
        tok()  # "target"
        tok()
        tok()  # ")"
    elif kind == b"directory":
        while True:
            t = tok()
            if t == b")":
                break
            tok()  # "("
            tok()  # "name"
            tok()
            tok()  # "node"
            tok()  # "("
            copy_node(r, out)
            tok()  # ")"
    else:
        sys.exit("serverec: bad NAR node type")


def main():
    export, pathinfo = sys.argv[1], sys.argv[2]
    with open(pathinfo) as f:
        infos = {i["path"]: i for i in json.load(f)}
    out = sys.stdout.buffer
    r = Reader(open(export, "rb"))

    def u64(n):
        return struct.pack("<Q", n)

    def s(b):
        if isinstance(b, str):
            b = b.encode()
        return u64(len(b)) + b + b"\0" * ((8 - len(b) % 8) % 8)

    out.write(u64(0x390C9DEB) + u64(0x205))
    while r.u64() == 1:
        # The NAR comes first in the export, its path after it: keep it.
        nar = io.BytesIO()
        nar.write(s(r.string()))  # "nix-archive-1"
        nar.write(s(r.string()))  # "("
        copy_node(r, nar)
        if r.u64() != EXPORT_MAGIC:
            sys.exit("serverec: bad export")
        path = r.string().decode()
        for _ in range(r.u64()):
            r.string()
        r.string()  # deriver
        if r.u64() != 0:
            sys.exit("serverec: signed exports are not handled")
        i = infos[path]
        refs = i.get("references", [])
        sigs = i.get("signatures", [])
        out.write(
            u64(9)
            + s(path)
            + s(i.get("deriver") or "")
            + s(i["narHash"])
            + u64(len(refs))
            + b"".join(s(x) for x in refs)
            + u64(i.get("registrationTime", 0))
            + u64(i["narSize"])
            + u64(0)
            + u64(len(sigs))
            + b"".join(s(x) for x in sigs)
            + s(i.get("ca") or "")
        )
        out.write(nar.getbuffer())


if __name__ == "__main__":
    main()
