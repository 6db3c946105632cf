"""Manage the gateway's API keys file.

    python -m gateway.keys create --id team-a --services nlp,embeddings,gateway \\
        --rate 10 --burst 20 --calls 100000 --tokens 5000000 [--images N] [--period-s 86400] [--admin]
    python -m gateway.keys list
    python -m gateway.keys revoke --id team-a

The file is --file or $LUMEN_GATEWAY_KEYS_FILE. `create` prints the new key
once on stdout; only its SHA-256 is stored. A running gateway picks up changes
within LUMEN_GATEWAY_KEYS_RELOAD_S.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gateway.key_store import DAY_S, SERVICES, ApiKey, hash_secret, new_secret, read_keys, write_keys


def _services(raw: str) -> frozenset[str]:
    names = frozenset(s.strip() for s in raw.split(",") if s.strip())
    if names == {"all"}:
        return frozenset(SERVICES)
    unknown = names - set(SERVICES)
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"services must be 'all' or a comma list of {', '.join(SERVICES)}")
    return names


def create(path: Path, args: argparse.Namespace) -> str:
    keys = read_keys(path)
    if any(k.id == args.id for k in keys):
        raise SystemExit(f"key id {args.id!r} already exists in {path}; revoke it first")
    secret = new_secret()
    key = ApiKey(
        id=args.id,
        sha256=hash_secret(secret),
        services=args.services,
        rate_per_s=args.rate,
        burst=args.burst,
        period_s=args.period_s,
        calls_per_period=args.calls,
        tokens_per_period=args.tokens,
        images_per_period=args.images,
        training_jobs=args.training_jobs,
        dataset_bytes=args.dataset_bytes,
        admin=args.admin,
    )
    key.check()
    write_keys(path, [*keys, key])
    return secret


def revoke(path: Path, key_id: str) -> None:
    keys = read_keys(path)
    if not any(k.id == key_id for k in keys):
        raise SystemExit(f"no key {key_id!r} in {path}")
    write_keys(path, [k for k in keys if k.id != key_id])


def describe(key: ApiKey) -> str:
    rate = f"{key.rate_per_s:g}/s burst {key.burst}" if key.rate_limited else "no rate limit"
    quota = ", ".join(
        f"{n} {label}"
        for n, label in (
            (key.calls_per_period, "calls"),
            (key.tokens_per_period, "tokens"),
            (key.images_per_period, "images"),
        )
        if n
    )
    admin = " admin" if key.admin else ""
    training = ", ".join(
        f"{n} {label}" for n, label in ((key.training_jobs, "training jobs"), (key.dataset_bytes, "dataset bytes")) if n
    )
    held = f"; at most {training}" if training else ""
    return f"{key.id}: {','.join(sorted(key.services))}; {rate}; {quota or 'no quota'} per {key.period_s}s{held}{admin}"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m gateway.keys", description=__doc__.split("\n")[0])
    top.add_argument("--file", type=Path, default=None, help="keys file (default $LUMEN_GATEWAY_KEYS_FILE)")
    commands = top.add_subparsers(dest="command", required=True)
    make = commands.add_parser("create", help="create a key and print it once")
    make.add_argument("--id", required=True, help="non-secret key id, e.g. team-a")
    make.add_argument("--services", type=_services, required=True, help="'all' or e.g. nlp,embeddings,gateway")
    make.add_argument("--rate", type=float, default=0.0, help="sustained calls per second (0: no rate limit)")
    make.add_argument("--burst", type=int, default=0, help="calls allowed at once above the rate (0: no rate limit)")
    make.add_argument(
        "--period-s", type=int, default=DAY_S, help="quota period in seconds, UTC-aligned (default a day)"
    )
    make.add_argument("--calls", type=int, default=0, help="calls per period (0: unlimited)")
    make.add_argument("--tokens", type=int, default=0, help="input+output tokens per period (0: unlimited)")
    make.add_argument("--images", type=int, default=0, help="images per period (0: unlimited)")
    make.add_argument("--training-jobs", type=int, default=0, help="unfinished training jobs at once (0: unlimited)")
    make.add_argument(
        "--dataset-bytes", type=int, default=0, help="bytes of training datasets stored at once (0: unlimited)"
    )
    make.add_argument("--admin", action="store_true", help="may read every key's usage")
    commands.add_parser("list", help="list key ids and limits (never keys)")
    gone = commands.add_parser("revoke", help="delete a key")
    gone.add_argument("--id", required=True)
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    raw = args.file or os.environ.get("LUMEN_GATEWAY_KEYS_FILE")
    if not raw:
        raise SystemExit("no keys file: pass --file or set LUMEN_GATEWAY_KEYS_FILE")
    path = Path(raw)
    try:
        if args.command == "create":
            secret = create(path, args)
            print(secret)
            print(f"key {args.id!r} stored (hash only) in {path}; this is the only time it is shown", file=sys.stderr)
        elif args.command == "revoke":
            revoke(path, args.id)
            print(f"key {args.id!r} revoked", file=sys.stderr)
        else:
            for key in read_keys(path):
                print(describe(key))
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
