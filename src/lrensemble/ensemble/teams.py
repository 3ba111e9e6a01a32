"""Teams as bitmasks, and the accuracy of the soft vote of every team, fast and exact.

A team of M ≤ 63 members is a bitmask: bit m set means member m is in the team. Arrays over
all teams are indexed by bitmask (index 0, the empty team, is unused).

How `team_accuracies` avoids 2^M full soft votes:
- A class that every member gives less than 1/C is never a team's argmax, so it never decides
  a vote and is ignored.
- A sample on which every member prefers the label by a clear margin is right for every team;
  one on which some class beats the label by a clear margin in every member is wrong for every
  team. Only the other samples can change, usually those where members disagree.
- On those, the team is right iff for every "threat" pair (sample n, class c), the team's sum
  of p_m(y_n) − p_m(c) is positive. Only classes that some member ranks near or above the label
  are threats.
- Samples are grouped by their number of pairs k, so the smallest pair sum of each sample is an
  elementwise minimum over k contiguous slices.
- Pair sums for all 2^M teams come from two halves of the members: every subset sum of a half
  is a smaller subset's sum plus one member's row (incremental adds, no subtraction drift), and
  a team's sum is its low half's plus its high half's: one add per (team, pair).
- Per open sample the smallest pair sum decides. Sums are float32 (half the memory traffic);
  one within `SUM_BAND` of zero is settled with the arithmetic of the straightforward soft vote
  (`team_accuracy`), so results equal the straightforward definition exactly: the float32
  sums differ from exact ones by far less than the band.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from lrensemble.arrays import check_probs
from lrensemble.ensemble.checks import check_team
from lrensemble.ensemble.metrics import NLL_CLIP
from lrensemble.errors import ParameterError

TIE_BAND = 1e-9  # float64 margins of single members
SUM_BAND = 1e-4  # float32 team sums: well above their rounding (< 4e-5 for 24 members)
PAIRS_PER_TILE = 2048  # with 256 low-half teams: a 2 MiB float32 tile
MIN_TILE_SAMPLES = 256  # a long contiguous axis for the minimum over a sample's pairs
MAX_ENUMERATION_MEMBERS = 24
# Enumerating teams of one size: the limit is work, teams to score × samples (today's ceiling,
# 2^24 teams, at 5,000 samples; C(32, 4) teams at 5,000 samples is 1.8e8).
MAX_ENUMERATION_WORK = (1 << 24) * 5_000
TILE_BYTES = 2 << 20  # one tile of team scores (cache-sized), whatever the number of teams


def mask_of(team: Iterable[int]) -> int:
    """Bitmask of a team given as member indices."""
    mask = 0
    for m in team:
        mask |= 1 << int(m)
    return mask


def members_of(mask: int) -> tuple[int, ...]:
    """Member indices of a bitmask, ascending."""
    return tuple(i for i in range(int(mask).bit_length()) if mask >> i & 1)


def team_sizes(m: int) -> np.ndarray:
    """Size (popcount) of every bitmask 0 … 2^m − 1."""
    return np.bitwise_count(np.arange(1 << m, dtype=np.uint64)).astype(np.int64)


def team_matrix(m: int, start: int = 0, count: int | None = None) -> np.ndarray:
    """Indicator matrix of bitmasks start … start + count − 1 (default: all 2^m): row t has
    ones at the members of its bitmask, shape (rows, m)."""
    stop = 1 << m if count is None else min(start + count, 1 << m)
    masks = np.arange(start, stop, dtype=np.int64)
    return ((masks[:, None] >> np.arange(m)) & 1).astype(np.float64)


def check_enumerable(m: int, max_members: int = MAX_ENUMERATION_MEMBERS) -> None:
    if m > max_members:
        raise ParameterError(
            f"A pool of {m} members has {2**m - 1:,} teams, too many to enumerate (the limit "
            f"is {max_members} members); use greedy selection, or focal selection with "
            "hierarchical pruning."
        )


def check_enumerable_work(teams: int, samples: int, max_work: int = MAX_ENUMERATION_WORK) -> None:
    """Refuse to score `teams` teams on `samples` samples when that is more than `max_work`."""
    if teams * samples > max_work:
        raise ParameterError(
            f"Scoring {teams:,} teams on {samples:,} samples is {teams * samples:.2e} team-samples,"
            f" above the limit of {max_work:.2e}; use greedy selection, a smaller team size, or "
            "focal selection with hierarchical pruning."
        )


def team_count(m: int, size: int | None = None) -> int:
    """Number of teams of `size` (default: of any size) in a pool of m."""
    return (1 << m) - 1 if size is None else math.comb(m, size)


def combinations_array(m: int, size: int) -> np.ndarray:
    """Every team of `size` from m members, (C(m, size), size) member indices, rows ascending
    and in lexicographic order (that of `itertools.combinations`)."""
    count = math.comb(m, size)
    flat = np.fromiter(
        itertools.chain.from_iterable(itertools.combinations(range(m), size)),
        dtype=np.int64,
        count=count * size,
    )
    return flat.reshape(count, size)


def masks_of_rows(teams: np.ndarray) -> np.ndarray:
    """Bitmasks (T,) of teams given as member-index rows (T, S); members below 63."""
    return np.bitwise_or.reduce(np.left_shift(1, teams.astype(np.int64)), axis=1)


def team_rows(teams: Any, m: int) -> np.ndarray:
    """Teams as member-index rows (T, S), each row ascending, from (T, S) member indices or
    (T,) bitmasks of one size. Checks indices, distinct members and equal sizes."""
    t = np.asarray(teams)
    if t.dtype.kind not in "iu":
        raise ParameterError(f"teams must be integers, got dtype {t.dtype}.")
    t = t.astype(np.int64)
    if t.ndim == 1:
        if len(t) and (t.min() <= 0 or (m < 63 and t.max() >= 1 << m)):
            raise ParameterError(f"team bitmasks must lie in 1 … 2^{m} − 1.")
        sizes = np.bitwise_count(t.astype(np.uint64)).astype(np.int64)
        if len(t) and (sizes != sizes[0]).any():
            raise ParameterError("teams given as bitmasks must all have the same size.")
        s = int(sizes[0]) if len(t) else 1
        bits = (t[:, None] >> np.arange(m)) & 1
        return np.nonzero(bits)[1].reshape(len(t), s)
    if t.ndim != 2 or t.shape[1] == 0:
        raise ParameterError(
            f"teams must be (T, S) member indices or (T,) bitmasks, got {t.shape}."
        )
    if len(t) and (t.min() < 0 or t.max() >= m):
        raise ParameterError(f"team members must be indices from 0 to {m - 1}.")
    t = np.sort(t, axis=1)
    if (np.diff(t, axis=1) == 0).any():
        raise ParameterError("a team lists a member twice.")
    return t


def team_accuracy(probs: np.ndarray, labels: np.ndarray, team: Iterable[int]) -> float:
    """Accuracy of the soft vote of one team: the straightforward definition (mean of the
    members' probabilities, argmax, compare)."""
    p, y = check_probs(probs, labels)
    members = list(check_team(team, len(p)))
    return float(np.mean(p[members].mean(axis=0).argmax(axis=1) == y))


class _Structure:
    """Samples of fixed outcome, and the threat pairs of the others grouped by how many pairs a
    sample has: group k holds `pairs` (M, k, n_k) (slot i of every sample contiguous) and the
    samples' indices (n_k,)."""

    def __init__(self, p: np.ndarray, y: np.ndarray, chunk: int = 4096) -> None:
        _, n, c = p.shape
        self.always_right = 0
        by_count: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        for lo in range(0, n, chunk):
            idx = np.arange(lo, min(lo + chunk, n))
            sub = p[:, idx]  # (M, n', C)
            d = sub[:, np.arange(len(idx)), y[idx]][:, :, None] - sub  # p(y) − p(c)
            d[:, np.arange(len(idx)), y[idx]] = np.inf
            # A class that every member gives less than 1/C of its row is never a team's
            # argmax (the winner's sum is at least |T|/C): if it outscores the label, a kept
            # class does too. Rows sum to 1 only within tolerance, hence the row-sum floor.
            floor = sub.sum(axis=2).min(axis=0) / c - TIE_BAND  # (n',)
            can_win = sub.max(axis=0) >= floor[:, None]  # (n', C)
            threat = (d <= TIE_BAND).any(axis=0) & can_win  # (n', C)
            wrong = (d < -TIE_BAND).all(axis=0).any(axis=1)
            self.always_right += int((~threat.any(axis=1)).sum())
            threat &= ~wrong[:, None]
            k_of = threat.sum(axis=1)
            for k in np.unique(k_of[k_of > 0]).tolist():
                rows = np.nonzero(k_of == k)[0]
                cls = np.nonzero(threat[rows])[1].reshape(len(rows), k)  # (n_k, k)
                pairs = d[:, rows[:, None], cls].transpose(0, 2, 1)  # (M, k, n_k)
                lists = by_count.setdefault(k, ([], []))
                lists[0].append(pairs)
                lists[1].append(idx[rows])
        self.groups = [
            (np.concatenate(pl, axis=2), np.concatenate(sl))
            for _, (pl, sl) in sorted(by_count.items())
        ]

    @property
    def pair_count(self) -> int:
        return sum(g.shape[1] * g.shape[2] for g, _ in self.groups)


def _subset_sums(rows: np.ndarray) -> np.ndarray:
    """Sums of every subset of `rows` (k, ...): (2^k, ...); subset s = subset without its
    lowest member plus that member's row."""
    k = rows.shape[0]
    out = np.zeros((1 << k, *rows.shape[1:]), dtype=rows.dtype)
    for s in range(1, 1 << k):
        low = (s & -s).bit_length() - 1
        out[s] = out[s ^ (1 << low)] + rows[low]
    return out


def team_accuracies(
    probs: np.ndarray,
    labels: np.ndarray,
    max_members: int = MAX_ENUMERATION_MEMBERS,
    workers: int | None = None,
) -> np.ndarray:
    """Soft-vote accuracy of every non-empty team: float array (2^M,), index = bitmask,
    index 0 is NaN. Equal to `team_accuracy` for every team.

    Example:
        >>> import numpy as np
        >>> p = np.array([[[.9, .1], [.6, .4]], [[.2, .8], [.3, .7]]])  # 2 members, 2 samples
        >>> team_accuracies(p, np.array([0, 1])).tolist()  # the pair beats both members
        [nan, 0.5, 0.5, 1.0]
    """
    p, y = check_probs(probs, labels)
    m, n, _ = p.shape
    check_enumerable(m, max_members)
    s = _Structure(p, y)
    h = (m + 1) // 2
    n_low, n_high = 1 << h, 1 << (m - h)
    sums = [(_subset_sums(g[:h]), _subset_sums(g[h:]), idx) for g, idx in s.groups]
    # work items: (group, first sample, end sample), about PAIRS_PER_TILE pairs each
    width = [max(MIN_TILE_SAMPLES, PAIRS_PER_TILE // g.shape[1]) for g, _ in s.groups]
    items = [
        (gi, lo, min(lo + width[gi], g.shape[2]))
        for gi, (g, _) in enumerate(s.groups)
        for lo in range(0, g.shape[2], width[gi])
    ]
    counts = np.zeros((len(items), 1 << m), dtype=np.int64)

    def tile(i: int) -> None:
        # Per open sample the smallest pair sum decides: above the band right, below wrong,
        # inside a near-tie settled by the straightforward definition. The tile stays in
        # cache while every high half is added to every low half.
        gi, lo, hi = items[i]
        low_all, high_all, idx = sums[gi]
        low, samples = low_all[:, :, lo:hi], idx[lo:hi]
        for j in range(n_high):
            smallest = (low + high_all[j, :, lo:hi]).min(axis=1)  # (2^h, samples)
            row = counts[i, j * n_low : (j + 1) * n_low]
            row += (smallest > SUM_BAND).sum(axis=1)
            teams, cols = np.nonzero(np.abs(smallest) <= SUM_BAND)
            masks = teams + j * n_low
            keep = masks > 0
            if keep.any():
                exact = _soft_vote_correct(p, y, masks[keep], samples[cols[keep]])
                np.add.at(row, teams[keep], exact.astype(np.int64))

    _run_blocks(tile, len(items), workers)
    correct = counts.sum(axis=0)
    acc = (correct + s.always_right) / n
    acc[0] = np.nan
    return acc


def _run_blocks(fn: Callable[[int], None], count: int, workers: int | None) -> None:
    """Call fn(0 … count − 1) on a thread pool (numpy releases the GIL in its loops)."""
    workers = workers or min(os.cpu_count() or 1, 8)
    if workers <= 1 or count < 4:
        for j in range(count):
            fn(j)
        return
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(fn, range(count)))


def _soft_vote_correct(
    p: np.ndarray, y: np.ndarray, masks: np.ndarray, samples: np.ndarray, chunk: int = 65536
) -> np.ndarray:
    """Whether the soft vote of team `masks[i]` is right on sample `samples[i]`, computed with
    the arithmetic of `team_accuracy`: member probabilities summed in member order (adding
    +0.0 for non-members changes nothing), divided by the team size, argmax."""
    m = p.shape[0]
    out = np.empty(len(masks), dtype=bool)
    for lo in range(0, len(masks), chunk):
        mk, sm = masks[lo : lo + chunk], samples[lo : lo + chunk]
        total = np.zeros((len(mk), p.shape[2]))
        for member in range(m):
            inside = ((mk >> member) & 1).astype(bool)
            total[inside] += p[member, sm[inside]]
        size = np.bitwise_count(mk.astype(np.uint64)).astype(np.float64)
        out[lo : lo + chunk] = (total / size[:, None]).argmax(axis=1) == y[sm]
    return out


def team_nlls(probs: np.ndarray, labels: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """NLL of the soft vote of each team bitmask in `masks` (K,), exactly as `nll` of the
    team's mean: only the label's probability matters, so a team's is one row of a matrix
    product of team indicators (K, M) and the members' label probabilities (M, N)."""
    p, y = check_probs(probs, labels)
    m = len(p)
    masks = np.asarray(masks, dtype=np.int64)
    chunk = max(1, (1 << 24) // max(1, len(y)))
    return _nlls_of_indicators(
        p, y, len(masks), chunk, lambda a, b: (masks[a:b, None] >> np.arange(m)) & 1
    )


def team_nlls_of(probs: Any, labels: Any, teams: Any, tile_bytes: int = TILE_BYTES) -> np.ndarray:
    """NLL of the soft vote of each team in `teams` ((T, S) member indices or (T,) bitmasks of
    one size): (T,), with the arithmetic of the definition (the members' label probabilities
    added in member order, divided by S, clipped, log, mean), so equal to the NLL of
    `team_accuracy`'s mean whatever the tiling; `team_nlls` (a matrix product) agrees to
    rounding. Teams go in tiles of about `tile_bytes` of (team, sample) means."""
    p, y = check_probs(probs, labels)
    rows = team_rows(teams, len(p))
    q = p[:, np.arange(len(y)), y]  # (M, N)
    out = np.empty(len(rows))
    step = max(1, tile_bytes // (8 * len(y)))
    for lo in range(0, len(rows), step):
        team = rows[lo : lo + step]
        total = q[team[:, 0]]
        for j in range(1, team.shape[1]):
            total += q[team[:, j]]
        mean = total / float(team.shape[1])
        out[lo : lo + step] = -np.log(np.clip(mean, NLL_CLIP, None)).mean(axis=1)
    return out


def _nlls_of_indicators(
    p: np.ndarray,
    y: np.ndarray,
    count: int,
    chunk: int,
    indicators: Callable[[int, int], np.ndarray],
) -> np.ndarray:
    """NLLs of `count` teams whose indicator rows a … b − 1 (float 0/1, (b − a, M)) come from
    `indicators(a, b)`, `chunk` teams at a time."""
    q = p[:, np.arange(len(y)), y]  # (M, N)
    out = np.empty(count)
    for start in range(0, count, chunk):
        bits = indicators(start, min(start + chunk, count)).astype(np.float64)
        mean = (bits @ q) / bits.sum(axis=1, keepdims=True)
        out[start : start + chunk] = -np.log(np.clip(mean, NLL_CLIP, None)).mean(axis=1)
    return out


def team_accuracies_of(
    probs: Any, labels: Any, teams: Any, tile_bytes: int = TILE_BYTES
) -> np.ndarray:
    """Soft-vote accuracy of each team in `teams` ((T, S) member indices or (T,) bitmasks of
    one size): (T,), equal to `team_accuracy` (and `team_accuracies`) for every team.

    The same structure as `team_accuracies` (fixed samples skipped, threat pairs grouped by
    count per sample), but each team's pair sums are its members' rows added up: work T × S ×
    pairs. Teams and samples go in tiles so the sums never take more than about `tile_bytes`,
    whatever T is; a smallest sum within `SUM_BAND` of zero is settled exactly."""
    p, y = check_probs(probs, labels)
    rows = team_rows(teams, len(p))
    count, size = rows.shape
    structure = _Structure(p, y)
    correct = np.zeros(count, dtype=np.int64)
    elems = max(1, tile_bytes // 8)  # the sums and one gathered member row, float32
    for g, idx in structure.groups:
        k, n_k = g.shape[1], g.shape[2]
        width = min(n_k, max(1, elems // k))
        step = max(1, elems // (k * width))
        for lo in range(0, n_k, width):
            # float32 halves the memory traffic; its rounding (< 1e-5 for 63 members) stays
            # far inside SUM_BAND, as in `team_accuracies`
            block = g[:, :, lo : lo + width].astype(np.float32)  # (M, k, w)
            samples = idx[lo : lo + width]
            for a in range(0, count, step):
                team = rows[a : a + step]
                sums = block[team[:, 0]]
                for j in range(1, size):
                    sums += block[team[:, j]]
                smallest = sums[:, 0]
                for i in range(1, k):  # elementwise over contiguous rows: faster than min(axis=1)
                    np.minimum(smallest, sums[:, i], out=smallest)
                correct[a : a + step] += (smallest > SUM_BAND).sum(axis=1)
                near_team, near_col = np.nonzero(np.abs(smallest) <= SUM_BAND)
                if len(near_team):
                    exact = _soft_vote_correct_rows(p, y, team[near_team], samples[near_col])
                    correct[a : a + step] += np.bincount(
                        near_team, weights=exact.astype(np.float64), minlength=len(team)
                    ).astype(np.int64)
    return (correct + structure.always_right) / len(y)


def _soft_vote_correct_rows(
    p: np.ndarray, y: np.ndarray, rows: np.ndarray, samples: np.ndarray, chunk: int = 65536
) -> np.ndarray:
    """`_soft_vote_correct` for teams as ascending member rows: the same arithmetic (members'
    probabilities added in member order, divided by the team size, argmax)."""
    out = np.empty(len(rows), dtype=bool)
    for lo in range(0, len(rows), chunk):
        r, sm = rows[lo : lo + chunk], samples[lo : lo + chunk]
        total = np.zeros((len(r), p.shape[2]))
        for j in range(r.shape[1]):
            total += p[r[:, j], sm]
        out[lo : lo + chunk] = (total / float(r.shape[1])).argmax(axis=1) == y[sm]
    return out
