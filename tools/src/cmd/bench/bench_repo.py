#!/usr/bin/env python3
"""The python-tuf 7.0.1 side of `ferry bench repo`: a FLAT repository (every target in one
targets.json, no delegations), edited and verified the way a python-tuf tool and client would.

`ferry bench repo` writes this file into its work directory and runs it; it is not meant to be
run by hand, but can be:

    bench_repo.py build   FLAT CATALOGUE.json     # untimed: keys, root, targets, snapshot, timestamp
    bench_repo.py publish FLAT NEW_TARGETS.json   # (a): one timed add-and-publish per entry
    bench_repo.py verify  FLAT TARGET RUNS        # (b): RUNS timed client verifications

FLAT is the repository directory (keys/, metadata/, targets/). CATALOGUE.json maps target
name to TUF target info ({"length", "hashes", "custom"}). NEW_TARGETS.json is a list of
{"name", "path", "custom"}: one new file per run. Each command prints one JSON object on
stdout; times are from time.perf_counter, in seconds.

Keys are ed25519 (as Ferry's), metadata is written compact with consistent snapshots
(N.targets.json, N.snapshot.json, timestamp.json), and every file is fsynced (python-tuf's
FilesystemBackend does that, as Ferry's editor does).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from datetime import datetime, timedelta, timezone

import tuf
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer
from tuf.ngclient._internal.trusted_metadata_set import TrustedMetadataSet
from tuf.ngclient.config import EnvelopeType

ROLES = (Root.type, Targets.type, Snapshot.type, Timestamp.type)
# The same lifetimes as a new Ferry repository.
LIFETIME_DAYS = {Root.type: 365, Targets.type: 90, Snapshot.type: 7, Timestamp.type: 1}
COMPACT = JSONSerializer(compact=True)


def expiry(role: str) -> datetime:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return now + timedelta(days=LIFETIME_DAYS[role])


def md_path(flat: str, name: str) -> str:
    return os.path.join(flat, "metadata", name)


def write(md: Metadata, path: str) -> int:
    md.to_file(path, COMPACT)
    return os.path.getsize(path)


def load_signer(flat: str, role: str) -> CryptoSigner:
    """A repository tool's first step: its private key for `role`, from a PEM file."""
    with open(os.path.join(flat, "keys", f"{role}.pub.json")) as f:
        pub = json.load(f)
    public = SSlibKey.from_dict(pub["keyid"], pub["key"])
    return CryptoSigner.from_priv_key_uri(
        "file2:" + os.path.join(flat, "keys", f"{role}.pem"), public
    )


def timestamp_meta(snapshot_bytes: bytes, version: int) -> MetaFile:
    return MetaFile(
        version=version,
        length=len(snapshot_bytes),
        hashes={"sha256": hashlib.sha256(snapshot_bytes).hexdigest()},
    )


# ------------------------------------------------------------------------------------- build


def build(flat: str, catalogue_path: str) -> dict:
    start = time.perf_counter()
    for d in ("keys", "metadata", "targets"):
        os.makedirs(os.path.join(flat, d), exist_ok=True)
    signers = {}
    for role in ROLES:
        signer = CryptoSigner.generate_ed25519()
        key = signer.public_key
        with open(os.path.join(flat, "keys", f"{role}.pem"), "wb") as f:
            f.write(signer.private_bytes)
        with open(os.path.join(flat, "keys", f"{role}.pub.json"), "w") as f:
            json.dump({"keyid": key.keyid, "key": key.to_dict()}, f)
        signers[role] = signer

    root = Metadata(Root(expires=expiry(Root.type), consistent_snapshot=True))
    for role in ROLES:
        root.signed.add_key(signers[role].public_key, role)
    root.sign(signers[Root.type])
    write(root, md_path(flat, "1.root.json"))
    write(root, md_path(flat, "root.json"))

    with open(catalogue_path) as f:
        catalogue = json.load(f)
    targets = Metadata(Targets(expires=expiry(Targets.type)))
    for name, info in catalogue.items():
        targets.signed.targets[name] = TargetFile.from_dict(info, name)
    del catalogue
    targets.sign(signers[Targets.type])
    write(targets, md_path(flat, "1.targets.json"))

    snapshot = Metadata(Snapshot(expires=expiry(Snapshot.type)))
    snapshot.signed.meta["targets.json"] = MetaFile(version=1)
    snapshot.sign(signers[Snapshot.type])
    write(snapshot, md_path(flat, "1.snapshot.json"))
    with open(md_path(flat, "1.snapshot.json"), "rb") as f:
        snapshot_bytes = f.read()

    timestamp = Metadata(Timestamp(expires=expiry(Timestamp.type)))
    timestamp.signed.snapshot_meta = timestamp_meta(snapshot_bytes, 1)
    timestamp.sign(signers[Timestamp.type])
    write(timestamp, md_path(flat, "timestamp.json"))
    return {"seconds": time.perf_counter() - start, "targets": len(targets.signed.targets)}


# ------------------------------------------------------------------------------- (a) publish


def add_and_publish(flat: str, name: str, path: str, custom: dict) -> None:
    """What a python-tuf repository tool does for `add-target` + `publish` on a flat
    repository: load its keys and the current metadata from disk, hash and store the file,
    add its TargetFile, bump and re-sign targets, snapshot and timestamp, write them."""
    signers = {role: load_signer(flat, role) for role in (Targets.type, Snapshot.type, Timestamp.type)}
    timestamp = Metadata[Timestamp].from_file(md_path(flat, "timestamp.json"))
    sv = timestamp.signed.snapshot_meta.version
    snapshot = Metadata[Snapshot].from_file(md_path(flat, f"{sv}.snapshot.json"))
    tv = snapshot.signed.meta["targets.json"].version
    targets = Metadata[Targets].from_file(md_path(flat, f"{tv}.targets.json"))

    target = TargetFile.from_file(name, path, ["sha256", "sha512"])
    target.unrecognized_fields["custom"] = custom
    dir_part, _, file_name = name.rpartition("/")
    store = os.path.join(flat, "targets", dir_part)
    os.makedirs(store, exist_ok=True)
    for digest in target.hashes.values():
        dest = os.path.join(store, f"{digest}.{file_name}")
        shutil.copyfile(path, dest)
        with open(dest, "rb+") as f:
            os.fsync(f.fileno())
    targets.signed.targets[name] = target

    targets.signed.version += 1
    targets.signed.expires = expiry(Targets.type)
    targets.signatures.clear()
    targets.sign(signers[Targets.type])
    write(targets, md_path(flat, f"{targets.signed.version}.targets.json"))

    snapshot.signed.meta["targets.json"] = MetaFile(version=targets.signed.version)
    snapshot.signed.version += 1
    snapshot.signed.expires = expiry(Snapshot.type)
    snapshot.signatures.clear()
    snapshot.sign(signers[Snapshot.type])
    snapshot_path = md_path(flat, f"{snapshot.signed.version}.snapshot.json")
    write(snapshot, snapshot_path)
    with open(snapshot_path, "rb") as f:
        snapshot_bytes = f.read()

    timestamp.signed.snapshot_meta = timestamp_meta(snapshot_bytes, snapshot.signed.version)
    timestamp.signed.version += 1
    timestamp.signed.expires = expiry(Timestamp.type)
    timestamp.signatures.clear()
    timestamp.sign(signers[Timestamp.type])
    write(timestamp, md_path(flat, "timestamp.json"))


def publish(flat: str, new_targets_path: str) -> dict:
    with open(new_targets_path) as f:
        new_targets = json.load(f)
    seconds = []
    for t in new_targets:
        start = time.perf_counter()
        add_and_publish(flat, t["name"], t["path"], t["custom"])
        seconds.append(time.perf_counter() - start)
    return {"seconds": seconds}


# -------------------------------------------------------------------------------- (b) verify


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def verify_once(flat: str, target: str) -> dict:
    """python-tuf's ngclient trusted set, fed from local files (no HTTP): trusted root, the
    root walk (stops: no 2.root.json), timestamp, snapshot, targets, then the lookup."""
    sizes = {}
    root = read(md_path(flat, "1.root.json"))
    sizes["root"] = len(root)
    trusted = TrustedMetadataSet(root, EnvelopeType.METADATA)
    next_root = md_path(flat, f"{trusted.root.version + 1}.root.json")
    if os.path.exists(next_root):
        raise SystemExit(f"unexpected {next_root}: the bench repository never rotates root")
    data = read(md_path(flat, "timestamp.json"))
    sizes["timestamp"] = len(data)
    trusted.update_timestamp(data)
    data = read(md_path(flat, f"{trusted.timestamp.snapshot_meta.version}.snapshot.json"))
    sizes["snapshot"] = len(data)
    trusted.update_snapshot(data)
    data = read(md_path(flat, f"{trusted.snapshot.meta['targets.json'].version}.targets.json"))
    sizes["targets"] = len(data)
    trusted.update_targets(data)
    if trusted.targets.targets.get(target) is None:
        raise SystemExit(f"target {target} not found")
    return sizes


def verify(flat: str, target: str, runs: int) -> dict:
    seconds = []
    sizes = {}
    for _ in range(runs):
        start = time.perf_counter()
        sizes = verify_once(flat, target)
        seconds.append(time.perf_counter() - start)
    return {"seconds": seconds, "bytes": sizes}


def main() -> None:
    if tuf.__version__ != "7.0.1":
        raise SystemExit(f"python-tuf 7.0.1 wanted, this python has {tuf.__version__}")
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "build":
        out = build(*args)
    elif cmd == "publish":
        out = publish(*args)
    elif cmd == "verify":
        out = verify(args[0], args[1], int(args[2]))
    else:
        raise SystemExit(f"unknown command {cmd!r}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
