"""kcat (Debian's, linking librdkafka 2.0.2, an old client still found in production)
produces and consumes through Floe byte-identically."""

from __future__ import annotations

import random
import string
import subprocess
from collections import Counter

from floe_harness import unique_topic

N = 100_000
# Printable, no ':' (the key delimiter) and no newline (the record delimiter).
ALPHABET = (string.ascii_letters + string.digits + string.punctuation + " ").replace(":", "").encode()


def kcat_lines(n: int, seed: int) -> bytes:
    """n lines `key:value\\n` with distinct keys and varied values (some empty)."""
    rnd = random.Random(seed)
    lines = []
    for i in range(n):
        key = b"k%06d-%s" % (i, rnd.randbytes(4).hex().encode())
        vlen = 0 if i % 500 == 7 else rnd.randint(1, 160)
        value = b"v%d-" % i + bytes(rnd.choice(ALPHABET) for _ in range(vlen)) if vlen else b""
        lines.append(key + b":" + value + b"\n")
    return b"".join(lines)


def run_kcat(kcat: str, *args: str, input_path=None, timeout: float = 120.0) -> bytes:
    stdin = open(input_path, "rb") if input_path else subprocess.DEVNULL
    try:
        res = subprocess.run([kcat, *args], stdin=stdin, capture_output=True, timeout=timeout)
    finally:
        if input_path:
            stdin.close()
    stderr = res.stderr.decode(errors="replace")
    assert res.returncode == 0, f"kcat {' '.join(args)} exited {res.returncode}\nstderr:\n{stderr}"
    return res.stdout


def produce_file(kcat, broker, topic, path):
    run_kcat(kcat, "-P", "-b", broker.bootstrap, "-t", topic, "-K:", "-X", "acks=all", input_path=path)


def consume_all(kcat, broker, topic, fmt="%k:%s\n") -> bytes:
    return run_kcat(kcat, "-C", "-b", broker.bootstrap, "-t", topic, "-e", "-q", "-o", "beginning", "-f", fmt)


def test_kcat_single_partition_roundtrip_in_order(broker, kcat, tmp_path):
    topic = broker.create_topic(unique_topic("kcat-one"), partitions=1)
    data = kcat_lines(N, seed=1)
    path = tmp_path / "records.txt"
    path.write_bytes(data)

    produce_file(kcat, broker, topic, path)
    out = consume_all(kcat, broker, topic)

    count = out.count(b"\n")
    assert count == N, f"read {count} records, produced {N}"
    if out != data:
        got, want = out.splitlines(), data.splitlines()
        first = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
        raise AssertionError(f"record {first} differs: got {got[first]!r}, produced {want[first]!r}")

    # Offsets are 0..N-1 in order.
    offsets = consume_all(kcat, broker, topic, fmt="%o\n").split()
    assert offsets == [b"%d" % i for i in range(N)]


def test_kcat_three_partitions_multiset(broker, kcat, tmp_path):
    topic = broker.create_topic(unique_topic("kcat-three"), partitions=3)
    meta = run_kcat(kcat, "-L", "-b", broker.bootstrap, "-t", topic).decode()
    assert f'topic "{topic}" with 3 partitions' in meta, meta

    data = kcat_lines(N, seed=2)
    path = tmp_path / "records.txt"
    path.write_bytes(data)
    produce_file(kcat, broker, topic, path)

    out = consume_all(kcat, broker, topic, fmt="%p %k:%s\n")
    by_partition: dict[bytes, list[bytes]] = {}
    for line in out.splitlines():
        p, rec = line.split(b" ", 1)
        by_partition.setdefault(p, []).append(rec)

    assert Counter(r for recs in by_partition.values() for r in recs) == Counter(data.splitlines())
    assert set(by_partition) <= {b"0", b"1", b"2"}
    assert len(by_partition) == 3, f"keys spread over partitions {sorted(by_partition)} only"
    # One producer: within each partition records keep the order they were sent in.
    for p, recs in by_partition.items():
        seqs = [int(r[1:7]) for r in recs]
        assert seqs == sorted(seqs), f"partition {p.decode()} out of order"
