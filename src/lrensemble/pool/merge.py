"""`merge_pools`: combine the pools of several machines (or producers) into one.

Every source must agree with the others (and with `out` when it exists) on splits, split sizes,
labels and classes. Members are copied one at a time through `Pool.add_member`, so a killed merge
leaves whole members only and a rerun finishes the job; sources are never modified.
"""

from __future__ import annotations

import filecmp
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lrensemble.errors import DataError, ParameterError
from lrensemble.pool.store import MEMBER_JSON, POOL_JSON, WEIGHTS_FILE, Pool

WEIGHTS = WEIGHTS_FILE


@dataclass(frozen=True)
class MergeResult:
    """What a merge did: ids added to `out` (renamed ones under their new id), members skipped
    as duplicates or as incomplete, and the number of complete members now in `out`."""

    out: str
    sources: list[str]
    added: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)  # new id -> id in its source
    duplicates: int = 0
    incomplete: int = 0
    total: int = 0

    def as_dict(self) -> dict[str, object]:
        """The JSON form of `lrens pool merge --json`."""
        return {
            "out": self.out,
            "sources": self.sources,
            "added": len(self.added),
            "duplicates": self.duplicates,
            "incomplete": self.incomplete,
            "total": self.total,
            "added_ids": self.added,
            "renamed": self.renamed,
        }


def _check_agree(a: Pool, b: Pool) -> None:
    """One sentence naming both pools and what differs, if they cannot be merged."""
    where = f"The pools {a.root} and {b.root}"
    if a.info["splits"] != b.info["splits"]:
        sizes = [", ".join(f"{s}={n}" for s, n in p.info["splits"].items()) for p in (a, b)]
        raise DataError(f"{where} have different splits ({sizes[0]} against {sizes[1]}).")
    if a.num_classes != b.num_classes:
        raise DataError(
            f"{where} have different numbers of classes ({a.num_classes} and {b.num_classes})."
        )
    for split in a.splits:
        if a.info["labels_sha256"][split] != b.info["labels_sha256"][split]:
            raise DataError(f"{where} have different {split} labels (their checksums differ).")


def _same_member(a: Pool, a_id: str, b: Pool, b_id: str) -> bool:
    """Whether two records are one member: same fingerprint (when both have one, computed the
    same way: their `identity` versions agree), else byte-identical predictions on every
    split."""
    ra, rb = a.member(a_id), b.member(b_id)
    fa, fb = ra.get("fingerprint"), rb.get("fingerprint")
    if fa is not None and fb is not None and ra.get("identity") == rb.get("identity"):
        return fa == fb
    try:
        return all(
            filecmp.cmp(a.member_file(a_id, f"{s}.npy"), b.member_file(b_id, f"{s}.npy"), False)
            for s in a.splits
        )
    except OSError:  # a missing prediction file: not the same member
        return False


def merge_pools(
    sources: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    rename: bool = False,
) -> MergeResult:
    """Copy the complete members of `sources` into the pool `out` (created if missing; it may
    be one of the sources). Members with an id already present are skipped when they are the
    same member (fingerprint, else predictions); a different member of that id is an error, or
    with `rename` is added as `<id>.<n>`. Everything is checked before anything is written."""
    if not sources:
        raise ParameterError("Give at least one pool to merge.")
    out_path = Path(out)
    target = Pool.open(out_path) if (out_path / POOL_JSON).exists() else None
    pools: list[Pool] = []
    seen = {out_path.resolve()}
    for source in sources:
        path = Path(source)
        if path.resolve() not in seen:
            seen.add(path.resolve())
            pools.append(Pool.open(path))
    reference = target or (pools[0] if pools else Pool.open(out_path))  # the latter raises
    for pool in pools:
        _check_agree(reference, pool)

    # Plan every copy (and find every conflict) before writing anything.
    present: dict[str, tuple[Pool, str]] = {}
    if target is not None:
        present = {m: (target, m) for m in target.member_ids(status=None)}
    plan: list[tuple[Pool, str, str]] = []  # (source, id there, id in out)
    duplicates = incomplete = 0
    for pool in pools:
        for member in pool.member_ids(status=None):
            if pool.member(member).get("status", "complete") != "complete":
                incomplete += 1
                continue
            new, n = member, 0
            while new in present:
                if _same_member(*present[new], pool, member):
                    duplicates += 1
                    break
                if not rename:
                    raise DataError(
                        f"Member {member!r} differs between the pools {present[new][0].root} and "
                        f"{pool.root}; merge with --rename to keep both."
                    )
                n += 1
                new = f"{member}.{n}"
            else:
                present[new] = (pool, member)
                plan.append((pool, member, new))

    if target is None:
        first = pools[0]
        labels = {s: first.labels(s) for s in first.splits}
        target = Pool.create(out_path, labels, first.num_classes, first.info.get("dataset"))
    added, renamed = [], {}
    for pool, member, new in plan:
        record = dict(pool.member(member))
        probs = {s: pool.probs(s, [member])[0] for s in pool.splits}
        weights = pool.member_file(member, WEIGHTS)
        if new != member:
            record.update(id=new, renamed_from=member)
            renamed[new] = member
        known = {MEMBER_JSON, WEIGHTS, *(f"{s}.npy" for s in pool.splits)}
        files = {  # the member's own other files (e.g. a pruned child's masks) go with it
            f.name: f
            for f in pool.member_dir(member).iterdir()
            if f.is_file() and not f.is_symlink() and f.name not in known
        }
        target.add_member(
            new, probs, record, weights=weights if weights.is_file() else None, files=files
        )
        added.append(new)
    return MergeResult(
        out=str(out_path),
        sources=[str(s) for s in sources],
        added=added,
        renamed=renamed,
        duplicates=duplicates,
        incomplete=incomplete,
        total=len(target.member_ids()),
    )
