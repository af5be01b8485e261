"""Reading W&B offline runs back (tests only): wandb 0.31 ships no Python reader of its `.wandb` files, so this
decodes their framing (LevelDB's log format: 32 KiB blocks of checksummed, possibly split records, after a
7-byte `:W&B` header) and parses each record with wandb's own protobuf, `wandb.proto.wandb_internal_pb2.Record`.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7  # checksum (4), length (2), type (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list:
    """Every Record of one .wandb file, in order (wandb_internal_pb2.Record messages)."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B" and magic == 0xBEE1, (ident, magic, version)
    out, pos, pending = [], 7, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # the block's tail is padding
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if length == 0 and kind == 0:  # zero padding at the end of a block
            pos += left
            continue
        chunk = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            rec = wandb_internal_pb2.Record()
            rec.ParseFromString(pending)
            out.append(rec)
            pending = b""
    return out


def offline_runs(root: Path, run_id: str) -> list[Path]:
    """The .wandb files of every offline session of run `run_id` under `root` (W&B's dir)."""
    return sorted(Path(root).glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb"))


def history(root: Path, run_id: str) -> list[dict]:
    """Every history row logged to run `run_id` over all its offline sessions: {key: value} each."""
    rows = []
    for f in offline_runs(root, run_id):
        for rec in records(f):
            if rec.WhichOneof("record_type") == "history":
                rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                             for item in rec.history.item})
    return rows


def config(root: Path, run_id: str) -> dict:
    """The config of run `run_id` (the latest value of each key over its sessions)."""
    out = {}
    for f in offline_runs(root, run_id):
        for rec in records(f):
            kind = rec.WhichOneof("record_type")
            items = rec.config.update if kind == "config" else rec.run.config.update if kind == "run" else []
            for item in items:
                out[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return out
