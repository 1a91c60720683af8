#!/usr/bin/env python3
"""Write a small but valid GGUF v3 file for the model catalog's tests and benchmark.

    make_gguf.py OUT [--arch llama] [--ftype 15] [--ctx 4096] [--name NAME] [--pad-mib N]

--pad-mib appends N MiB of pseudo-random tensor data, so downloads take some time and
resumes have something to skip.
"""
import argparse
import os
import struct


def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv_str(key, val):
    return gguf_str(key) + struct.pack("<I", 8) + gguf_str(val)


def kv_u32(key, val):
    return gguf_str(key) + struct.pack("<II", 4, val)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--arch", default="llama")
    ap.add_argument("--ftype", type=int, default=15)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--name", default="Tiny Test Model")
    ap.add_argument("--pad-mib", type=int, default=0)
    a = ap.parse_args()
    kvs = [kv_str("general.architecture", a.arch), kv_str("general.name", a.name),
           kv_u32("general.file_type", a.ftype), kv_u32(a.arch + ".context_length", a.ctx)]
    tensors = [("token_embd.weight", [64, 32]), ("output.weight", [64, 32])]
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    for name, dims in tensors:
        head += gguf_str(name) + struct.pack("<I", len(dims))
        head += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", 0, 0)
    with open(a.out + ".tmp", "wb") as f:
        f.write(head)
        f.write(b"\0" * (-len(head) % 32))
        for _ in range(a.pad_mib):
            f.write(os.urandom(1 << 20))
    os.rename(a.out + ".tmp", a.out)


if __name__ == "__main__":
    main()
