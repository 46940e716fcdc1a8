#!/usr/bin/env python3
"""Writes the hand-made seed inputs under fuzz/seeds/ (run from anywhere; idempotent).
Fixture-derived seeds (NCCL/hwloc XML, nvidia-smi, ibnetdiscover, cluster files) are copied at
configure time instead; see cmake/Fuzz.cmake."""
import os
import struct

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")
SECRET = bytes(range(1, 17))


def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def wire_addr(ip4, port):
    # family(u16) port_be(u16) scope(u32) addr[16] reserved(u32)
    return struct.pack("<HHI", 2, port.to_bytes(2, "big")[0] | port.to_bytes(2, "big")[1] << 8, 0) + bytes(ip4) + bytes(12) + bytes(4)


# Bootstrap: three join requests (secret planted by the fuzzer when the flag byte is odd), one
# duplicate, then two message headers and a table.
def join(nranks, rank):
    return b"\x01" + struct.pack("<II", 0x7e11b007, 1) + SECRET + struct.pack("<ii", nranks, rank) + wire_addr([127, 0, 0, 1], 5000 + rank)


def p2p(frm, tag, n):
    return b"\x07" + struct.pack("<II", 0x7e11b007, 3) + SECRET + struct.pack("<iIQ", frm, tag, n)


put("fuzz_bootstrap", "three_ranks", join(3, 0) + join(3, 2) + join(3, 2) + join(3, 1) + p2p(1, 0x1010, 64) + p2p(9, 0, 1 << 40) + wire_addr([10, 0, 0, 1], 1234) * 3)
put("fuzz_bootstrap", "bad", join(0, 0) + join(2, 5) + join(-1, 0))

# Unique id: a valid one (127.0.0.1:5000, secret 1..16) as 128 bytes and as hex.
uid = bytearray(128)
uid[0:4] = struct.pack("<I", 0x534c5254)
uid[4:6] = struct.pack("<H", 1)
uid[6:8] = struct.pack("<H", 2)
uid[8:10] = (5000).to_bytes(2, "big")
uid[12:16] = bytes([127, 0, 0, 1])
uid[28:44] = SECRET
put("fuzz_unique_id", "binary", bytes(uid))
put("fuzz_unique_id", "hex", bytes(uid).hex())
uid6 = bytearray(uid)
uid6[6:8] = struct.pack("<H", 10)
uid6[12:28] = bytes(15) + b"\x01"
put("fuzz_unique_id", "binary_v6", bytes(uid6))


# TCP stream: 2 receives (610 and 61000 bytes) on one socket, chunk size 4 KiB.
def chunk(seq, off, total, payload, crc=0, flags=0):
    return struct.pack("<IIQQQII", 0x7e11da7a, len(payload), seq, off, total, crc, flags) + payload


stream = chunk(0, 0, 610, bytes(610))
for off in range(0, 61000, 4096):
    n = min(4096, 61000 - off)
    stream += chunk(1, off, 61000, bytes([off & 255]) * n)
put("fuzz_tcp_stream", "two_messages", bytes([0x01, 10, 0, 0xe8, 0x03, 255]) + stream)
put("fuzz_tcp_stream", "empty_message", bytes([0x00, 0, 0, 128]) + chunk(0, 0, 0, b""))
put("fuzz_tcp_stream", "crc_flagged", bytes([0x00, 1, 0, 255]) + chunk(0, 0, 61, bytes(61), 0x12345678, 1))

# Cluster digest: two ranks of one host with two rails.
def digest(host_id, host, nics):
    rec = struct.pack("<IHHQhh", 0x54474944, 1, 1, host_id, len(nics), 2)
    rec += struct.pack("<16h", *([0, 1] + [-1] * 14))
    rec += struct.pack("<32h", *([0, 1] + [-1] * 30))
    rec += host.encode().ljust(64, b"\0") + b"su01".ljust(48, b"\0") + b"spines01".ljust(48, b"\0")
    rec += b"".join(n.encode().ljust(32, b"\0") for n in nics) + bytes(32 * (16 - len(nics)))
    rec += b"".join(("leaf-%d" % i).encode().ljust(48, b"\0") for i in range(len(nics))) + bytes(48 * (16 - len(nics)))
    return b"\x00" + rec + bytes(4)  # + padding to the struct's 8-byte alignment


put("fuzz_cluster_digest", "two_ranks", digest(7, "node01", ["mlx5_0", "mlx5_1"]) * 2 + digest(9, "node02", ["mlx5_0", "mlx5_1"]))

for i, s in enumerate(["node[01-16]", "gpu[1-4,7]-ib,login", "a[001-100]b[1-2]", "x[9-1]", "n[1-99999999]", "[]", "a,,b"]):
    put("fuzz_hostlist", "h%d" % i, s)

for i, s in enumerate(["allreduce:ring", "allreduce:ring,broadcast:binomial,alltoall:pairwise",
                       "reduce:binomial,reducescatter:ring,allgather:direct", "allreduce:nosuch", ":,:", "ALLREDUCE:RING"]):
    put("fuzz_algo_string", "a%d" % i, s)

params = ["\x00" + "64K", "\x00" + "0x10M", "\x00" + "9223372036854775807", "\x01" + "yes", "\x02" + "1e308",
          "\x03" + "TRELLIS_TIMEOUT_S = 30 # comment\nTRELLIS_ALGO=allreduce:ring\n=x\n",
          "\x04" + "^docker,lo\nAF_INET", "\x04" + "=eth0", "\x05" + "127.0.0.1:80", "\x05" + "[::1]:65535",
          "\x06" + "info\nnet,^shm", "\x07" + "-1"]
for i, s in enumerate(params):
    put("fuzz_params", "p%d" % i, s)

for i, s in enumerate(["allreduce:0-4k:@rd#allreduce:4k-inf:@ring", "all:chunk=256k:channels=2", "allreduce,broadcast:[2-8]:!ring",
                       "reduce:1M-inf:[4-inf]:@binomial", "allreduce:64k-1M,2M-inf:@rhd", "bogus:@x", "allreduce:4k-1k:@ring", "#", ""]):
    put("fuzz_tune_string", "t%d" % i, s)
