#!/usr/bin/env python3
"""Writes the ZIP archives the layer tests extract: well-formed ones and every hostile kind.

usage: make_zips.py DIR
"""
import os
import stat
import struct
import sys
import zipfile
import zlib


def entry(name, mode, data=b"", compress=zipfile.ZIP_DEFLATED):
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 2, 3, 4, 6))
    info.create_system = 3  # Unix: the upper 16 bits of external_attr are st_mode
    info.external_attr = mode << 16
    info.compress_type = compress
    return info, data


def write(path, entries):
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)


def main(out):
    os.makedirs(out, exist_ok=True)
    f = stat.S_IFREG
    # A function: a handler, an executable bootstrap, a nested package, a relative symlink inside.
    write(f"{out}/function.zip", [
        entry("app.py", f | 0o644, b"def handler(event, context):\n    return {'ok': True}\n"),
        entry("bootstrap", f | 0o755, b"#!/bin/sh\necho bootstrap\n"),
        entry("lib/", stat.S_IFDIR | 0o755),
        entry("lib/helper.py", f | 0o600, b"VALUE = 42\n"),
        entry("current", stat.S_IFLNK | 0o777, b"lib/helper.py"),
    ])
    # Two layers that clash on one name: the later one must win at /opt.
    write(f"{out}/layer1.zip", [
        entry("bin/tool-one", f | 0o755, b"#!/bin/sh\necho one\n"),
        entry("clash.txt", f | 0o644, b"from layer one\n"),
        entry("python/shared_one.py", f | 0o644, b"NAME = 'one'\n"),
    ])
    write(f"{out}/layer2.zip", [
        entry("bin/tool-two", f | 0o755, b"#!/bin/sh\necho two\n"),
        entry("clash.txt", f | 0o644, b"from layer two\n"),
        entry("lib/libx.so.1", f | 0o644, b"not really a library\n"),
        entry("lib/libx.so", stat.S_IFLNK | 0o777, b"/opt/lib/libx.so.1"),
    ])
    # Hostile archives.
    write(f"{out}/traversal.zip", [entry("ok.txt", f | 0o644, b"x"), entry("../../escaped.txt", f | 0o644, b"pwned")])
    write(f"{out}/nested-traversal.zip", [entry("a/b/../../../escaped.txt", f | 0o644, b"pwned")])
    write(f"{out}/absolute.zip", [entry("/etc/escaped.txt", f | 0o644, b"pwned")])
    write(f"{out}/symlink-out.zip", [entry("passwd", stat.S_IFLNK | 0o777, b"../../../../etc/passwd")])
    write(f"{out}/symlink-absolute.zip", [entry("passwd", stat.S_IFLNK | 0o777, b"/etc/passwd")])
    # A symlink to a directory outside, then a file written "through" it.
    write(f"{out}/symlink-then-write.zip", [
        entry("dir", stat.S_IFLNK | 0o777, b"/tmp"),
        entry("dir/escaped.txt", f | 0o644, b"pwned"),
    ])
    write(f"{out}/device.zip", [entry("console", stat.S_IFCHR | 0o666, b"")])
    write(f"{out}/fifo.zip", [entry("pipe", stat.S_IFIFO | 0o666, b"")])
    write(f"{out}/duplicate.zip", [entry("a.txt", f | 0o644, b"one"), entry("a.txt", f | 0o644, b"two")])
    write(f"{out}/setuid.zip", [entry("suid", f | 0o4755, b"#!/bin/sh\n")])
    # Zip bomb: 64 MiB of zeros, deflated to ~64 KiB (ratio ~1000x).
    with zipfile.ZipFile(f"{out}/bomb.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        info, _ = entry("zeros.bin", f | 0o644)
        with archive.open(info, "w", force_zip64=True) as sink:
            block = bytes(1 << 20)
            for _ in range(64):
                sink.write(block)
    # Many entries.
    with zipfile.ZipFile(f"{out}/many.zip", "w", zipfile.ZIP_STORED) as archive:
        for index in range(3000):
            info, _ = entry(f"f{index}", f | 0o644, compress=zipfile.ZIP_STORED)
            archive.writestr(info, b"")
    # 12 MiB of random bytes: over a 10 MiB limit.
    write(f"{out}/large.zip", [entry("random.bin", f | 0o644, os.urandom(12 << 20), zipfile.ZIP_STORED)])
    # Corrupt: a flipped byte in the compressed data (CRC mismatch), a truncated file, not a zip.
    data = bytearray(open(f"{out}/function.zip", "rb").read())
    data[40] ^= 0xFF
    open(f"{out}/corrupt.zip", "wb").write(bytes(data))
    open(f"{out}/truncated.zip", "wb").write(open(f"{out}/layer1.zip", "rb").read()[:-30])
    open(f"{out}/not-a-zip.zip", "wb").write(b"this is not a zip archive at all\n" * 10)
    # Lies about its size: the central directory says 10 bytes, the data inflates to 1 MiB.
    payload = bytes(1 << 20)
    with zipfile.ZipFile(f"{out}/liar.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        info, _ = entry("liar.bin", f | 0o644)
        archive.writestr(info, payload)
    raw = bytearray(open(f"{out}/liar.zip", "rb").read())
    cd = raw.rfind(b"PK\x01\x02")
    struct.pack_into("<I", raw, cd + 24, 10)  # uncompressed size in the central directory
    lfh = raw.find(b"PK\x03\x04")
    struct.pack_into("<I", raw, lfh + 22, 10)  # and in the local header
    open(f"{out}/liar.zip", "wb").write(bytes(raw))


if __name__ == "__main__":
    main(sys.argv[1])
