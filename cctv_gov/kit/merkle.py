"""RFC 9162 §2.1 (the RFC 6962 construction) Merkle tree: hashing, proofs against a node store, verification.

Pure functions, no I/O. A tree over n leaves is never stored whole: every hash a proof needs is the fold of a
few *perfect* subtrees, named by node coordinates ``(level, index)``. Level 0 holds the leaf hashes; node
``(level, index)`` covers leaves ``[index * 2**level, (index + 1) * 2**level)`` and only exists once all of
those leaves do, so its hash never changes. A sequencer stores each node once, when `CompactRange.append`
reports it, and a proof is one lookup of a handful of nodes (`inclusion_proof`, `consistency_proof`, `root`).

Verification follows the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2 step by step; the proof length is also
checked up front so that a wrong proof is reported as such rather than as a mismatching root.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "Node",
    "NodeGetter",
    "ProofError",
    "consistency_proof",
    "consistency_proof_nodes",
    "fold",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "leaf_hash",
    "node_hash",
    "range_nodes",
    "root",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]
"""A perfect aligned subtree ``(level, index)``; level 0 is a leaf hash."""

NodeGetter = Callable[[Sequence[Node]], Mapping[Node, bytes]]
"""Looks up stored node hashes; called once per proof with every node that proof needs."""

_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class ProofError(ValueError):
    """A proof, or the sizes, indices or hashes it is checked against, does not verify."""


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry): the leaf prefix keeps a leaf from posing as an inner node."""
    return _sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """The RFC's split point k for n > 1: the largest power of two strictly smaller than n."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[Node]:
    """The perfect subtrees the RFC's recursive split cuts leaves ``[start, end)`` into, left to right.

    Repeatedly splitting at k (the largest power of two below the remaining width) peels off perfect subtrees
    of strictly decreasing size; each must be aligned, which holds for every range that is a node of an RFC
    tree or an element of one of its proofs. `fold` of their hashes is MTH of the range.
    """
    if start < 0 or end < start:
        raise ValueError(f"invalid leaf range [{start}, {end})")
    nodes: list[Node] = []
    pos, width = start, end - start
    while width:
        # The top bit of the remaining width is the perfect subtree the split peels off next.
        level = width.bit_length() - 1
        if pos & ((1 << level) - 1):
            raise ValueError(f"leaf range [{start}, {end}) is not a subtree of an RFC 6962 tree")
        nodes.append((level, pos >> level))
        pos += 1 << level
        width -= 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """Combine the hashes of `range_nodes` right to left, as MTH does: h0 . (h1 . (h2 . ...))."""
    if not hashes:
        raise ValueError("fold of no hashes (the empty tree's root is EMPTY_ROOT)")
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = _sha256(_NODE_PREFIX + h + acc).digest()
    return acc


def _check_size(size: int) -> None:
    if size < 0:
        raise ValueError(f"tree size {size} is negative")


def inclusion_proof_nodes(index: int, size: int) -> list[list[Node]]:
    """For each element of PATH(index, D[size]) (RFC 9162 §2.1.3.1), bottom up: the nodes whose fold it is."""
    _check_size(size)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    top_down: list[list[Node]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            top_down.append(range_nodes(lo + k, hi))
            hi = lo + k
        else:
            top_down.append(range_nodes(lo, lo + k))
            lo += k
    top_down.reverse()
    return top_down


def consistency_proof_nodes(size1: int, size2: int) -> list[list[Node]]:
    """For each element of PROOF(size1, D[size2]) (RFC 9162 §2.1.4.1), in order: the nodes whose fold it is.

    Empty when size1 == size2 or size1 == 0: nothing needs proving.
    """
    _check_size(size1)
    if size2 < size1:
        raise ValueError(f"size1 {size1} is larger than size2 {size2}")
    if size1 in (0, size2):
        return []
    # SUBPROOF(m, D[lo:hi], b) walks down from the root; the element at each level is appended after the
    # elements below it, so collect top down and reverse.
    top_down: list[list[Node]] = []
    lo, hi, whole_subtree_known = 0, size2, True
    while size1 != hi:
        k = _largest_power_of_two_below(hi - lo)
        if size1 <= lo + k:
            top_down.append(range_nodes(lo + k, hi))
            hi = lo + k
        else:
            top_down.append(range_nodes(lo, lo + k))
            lo += k
            whole_subtree_known = False
    if not whole_subtree_known:
        # SUBPROOF(m, D[m], false) = {MTH(D[m])}: the verifier cannot rebuild this subtree from the old root.
        top_down.append(range_nodes(lo, hi))
    top_down.reverse()
    return top_down


def _fetch(groups: Sequence[Sequence[Node]], get: NodeGetter) -> list[bytes]:
    wanted = list(dict.fromkeys(node for group in groups for node in group))
    found = get(wanted) if wanted else {}
    missing = [node for node in wanted if node not in found]
    if missing:
        raise LookupError(f"node store lacks {len(missing)} node(s), first {missing[0]}")
    return [fold([found[node] for node in group]) for group in groups]


def inclusion_proof(index: int, size: int, get: NodeGetter) -> list[bytes]:
    """The RFC 9162 inclusion proof for leaf `index` in the tree of `size`, with one call to `get`."""
    return _fetch(inclusion_proof_nodes(index, size), get)


def consistency_proof(size1: int, size2: int, get: NodeGetter) -> list[bytes]:
    """The RFC 9162 consistency proof from `size1` to `size2`, with one call to `get` (none if empty)."""
    return _fetch(consistency_proof_nodes(size1, size2), get)


def root(size: int, get: NodeGetter) -> bytes:
    """MTH of the first `size` leaves, with one call to `get` (none for the empty tree)."""
    _check_size(size)
    if size == 0:
        return EMPTY_ROOT
    return _fetch([range_nodes(0, size)], get)[0]


# Verification -----------------------------------------------------------------------------------------------


def _check_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def _check_proof_length(proof: Sequence[bytes], want: int) -> None:
    if len(proof) != want:
        raise ProofError(f"proof has {len(proof)} hashes, expected {want}")
    for i, h in enumerate(proof):
        _check_hash(f"proof[{i}]", h)


def _inclusion_proof_length(index: int, size: int) -> int:
    # Below the level where the paths to `index` and to the last leaf diverge there is one sibling per level;
    # above it, one left sibling for each level at which the path turns right.
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` makes of `leaf` at `index` in a tree of `size` (RFC 9162 §2.1.3.2 steps 1-4)."""
    if index < 0 or size < 0:
        raise ProofError(f"negative leaf index {index} or tree size {size}")
    if index >= size:
        raise ProofError(f"leaf index {index} is not less than tree size {size}")
    _check_hash("leaf hash", leaf)
    _check_proof_length(proof, _inclusion_proof_length(index, size))
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes) -> None:
    """Check that `leaf` is at `index` in the tree of `size` and root `root_hash`, or raise ProofError."""
    _check_hash("root hash", root_hash)
    if root_from_inclusion_proof(leaf, index, size, proof) != root_hash:
        raise ProofError(
            f"inclusion proof for leaf {index} does not lead to the root of the tree of size {size}"
        )


def _consistency_proof_length(size1: int, size2: int) -> int:
    # As for inclusion of leaf size1-1, starting at the level of the rightmost perfect subtree of the old
    # tree, plus that subtree's own hash unless it is the whole old tree (size1 a power of two).
    fork = ((size1 - 1) ^ (size2 - 1)).bit_length()
    shift = (size1 & -size1).bit_length() - 1
    border = ((size1 - 1) >> fork).bit_count()
    seed = 0 if size1 == 1 << shift else 1
    return seed + (fork - shift) + border


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that the tree of `size2` and root `root2` extends the tree of `size1` and root `root1`.

    RFC 9162 §2.1.4.2, plus the cases the RFC leaves to the caller: equal sizes need an empty proof and equal
    roots; an old size of 0 needs an empty proof and ``root1 == EMPTY_ROOT`` (and says nothing about `root2`
    unless size2 is also 0). Raises ProofError.
    """
    if size1 < 0 or size2 < 0:
        raise ProofError(f"negative tree size {size1} or {size2}")
    if size1 > size2:
        raise ProofError(f"size1 {size1} is larger than size2 {size2}: a log cannot shrink")
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    if size1 == size2:
        if proof:
            raise ProofError(f"consistency proof between equal sizes must be empty, got {len(proof)} hashes")
        if root1 != root2:
            raise ProofError(f"roots differ for the same tree size {size1}")
        return
    if size1 == 0:
        if proof:
            raise ProofError(f"consistency proof from the empty tree must be empty, got {len(proof)} hashes")
        if root1 != EMPTY_ROOT:
            raise ProofError("root1 of the empty tree is not the empty root")
        return
    # Step 1: an empty path fails (also caught by the length check, which gives the clearer message).
    if not proof:
        raise ProofError(f"empty consistency proof from size {size1} to {size2}")
    _check_proof_length(proof, _consistency_proof_length(size1, size2))
    path = list(proof)
    # Step 2: when the old tree is perfect, its root is the first node of the path.
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    # Steps 3-4.
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Steps 5-6.
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != root1:
        raise ProofError(f"consistency proof does not lead to root1 of the tree of size {size1}")
    if sr != root2:
        raise ProofError(f"consistency proof does not lead to root2 of the tree of size {size2}")


# Streaming --------------------------------------------------------------------------------------------------


class CompactRange:
    """The roots of the perfect subtrees covering leaves [0, size): O(log size) state for appending to a log.

    `append` returns every perfect node of level >= 1 it completes, so a sequencer can store the nodes later
    proofs need while it streams leaves, without ever loading the tree.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        """Resume from a stored state: `hashes` are those of ``range_nodes(0, size)``, left to right."""
        _check_size(size)
        stack = list(hashes)
        if len(stack) != size.bit_count():
            raise ValueError(
                f"a range of {size} leaves has {size.bit_count()} subtree roots, got {len(stack)}"
            )
        for h in stack:
            if len(h) != HASH_SIZE:
                raise ValueError(f"subtree root is {len(h)} bytes, not {HASH_SIZE}")
        self._size = size
        self._stack = stack

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> list[bytes]:
        """Hashes of `nodes`, left to right (a copy)."""
        return list(self._stack)

    def nodes(self) -> list[Node]:
        return range_nodes(0, self._size)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add the next leaf hash; return ``(level, index, hash)`` of each node of level >= 1 it completes."""
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"leaf hash is {len(leaf)} bytes, not {HASH_SIZE}")
        stack = self._stack
        index = self._size
        self._size = index + 1
        if not index & 1:
            # A left child: nothing completes (half of all appends, so worth the shortcut).
            stack.append(leaf)
            return []
        created: list[tuple[int, int, bytes]] = []
        h = leaf
        level = 0
        # Each trailing 1 bit of the old size is a finished left sibling waiting on the stack.
        while index & 1:
            h = _sha256(_NODE_PREFIX + stack.pop() + h).digest()
            index >>= 1
            level += 1
            created.append((level, index, h))
        stack.append(h)
        return created

    def root(self) -> bytes:
        """MTH of the leaves appended so far."""
        if not self._stack:
            return EMPTY_ROOT
        return fold(self._stack)
