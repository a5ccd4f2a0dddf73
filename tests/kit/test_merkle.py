"""The Merkle tree against a naive implementation written from RFC 9162 §2.1, over every small tree.

The reference below (MTH, PATH, PROOF/SUBPROOF, and verifiers that rebuild roots by the same recursion) shares
no code with `cctv_gov.kit.merkle`; it hashes with hashlib directly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence

import pytest

from cctv_gov.kit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    Node,
    ProofError,
    consistency_proof,
    consistency_proof_nodes,
    fold,
    inclusion_proof,
    inclusion_proof_nodes,
    leaf_hash,
    node_hash,
    range_nodes,
    root,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

# Reference implementation -----------------------------------------------------------------------------------


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _split(n: int) -> int:
    """k: the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class RefTree:
    """MTH, PATH and PROOF over the entries D[0:n], straight from RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1."""

    def __init__(self, entries: Sequence[bytes]) -> None:
        self.entries = list(entries)
        self._memo: dict[tuple[int, int], bytes] = {}

    def mth(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi])."""
        key = (lo, hi)
        if key not in self._memo:
            n = hi - lo
            if n == 0:
                value = _h(b"")
            elif n == 1:
                value = _h(b"\x00" + self.entries[lo])
            else:
                k = _split(n)
                value = _h(b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi))
            self._memo[key] = value
        return self._memo[key]

    def leaf(self, i: int) -> bytes:
        return self.mth(i, i + 1)

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        """PATH(m, D[lo:hi]), m relative to lo."""
        n = hi - lo
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self.path(m, lo, lo + k), self.mth(lo + k, hi)]
        return [*self.path(m - k, lo + k, hi), self.mth(lo, lo + k)]

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        """SUBPROOF(m, D[lo:hi], b), m relative to lo."""
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = _split(n)
        if m <= k:
            return [*self.subproof(m, lo, lo + k, b), self.mth(lo + k, hi)]
        return [*self.subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        """PROOF(m, D[n]) for 0 < m < n."""
        return self.subproof(m, 0, n, True)

    def perfect_nodes(self, size: int) -> dict[Node, bytes]:
        """Every perfect aligned subtree of the first `size` leaves, as a node store holds them."""
        store: dict[Node, bytes] = {}
        level = 0
        while (1 << level) <= size:
            for index in range(size >> level):
                store[(level, index)] = self.mth(index << level, (index + 1) << level)
            level += 1
        return store


class _MismatchError(Exception):
    pass


def ref_root_from_path(leaf: bytes, m: int, n: int, proof: Sequence[bytes]) -> bytes:
    """Rebuild the root by PATH's recursion, consuming proof elements from the top (the last one) down."""
    if n == 1:
        if proof:
            raise _MismatchError("proof too long")
        return leaf
    if not proof:
        raise _MismatchError("proof too short")
    k, top = _split(n), proof[-1]
    if m < k:
        return _h(b"\x01" + ref_root_from_path(leaf, m, k, proof[:-1]) + top)
    return _h(b"\x01" + top + ref_root_from_path(leaf, m - k, n - k, proof[:-1]))


def ref_inclusion_ok(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes) -> bool:
    if not 0 <= index < size or any(len(p) != 32 for p in proof) or len(leaf) != 32:
        return False
    try:
        return ref_root_from_path(leaf, index, size, proof) == root_hash
    except _MismatchError:
        return False


def _ref_subproof_roots(
    m: int, n: int, b: bool, proof: Sequence[bytes], old_root: bytes
) -> tuple[bytes, bytes]:
    """Rebuild (MTH of the old part, MTH of the whole) of a subtree by SUBPROOF's recursion."""
    if m == n:
        if b:
            if proof:
                raise _MismatchError("proof too long")
            return old_root, old_root
        if len(proof) != 1:
            raise _MismatchError("wrong proof length")
        return proof[0], proof[0]
    if not proof:
        raise _MismatchError("proof too short")
    k, top = _split(n), proof[-1]
    if m <= k:
        old, new = _ref_subproof_roots(m, k, b, proof[:-1], old_root)
        return old, _h(b"\x01" + new + top)
    old, new = _ref_subproof_roots(m - k, n - k, False, proof[:-1], old_root)
    return _h(b"\x01" + top + old), _h(b"\x01" + top + new)


def ref_consistency_ok(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> bool:
    if size1 > size2 or len(root1) != 32 or len(root2) != 32 or any(len(p) != 32 for p in proof):
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof and root1 == EMPTY_ROOT
    try:
        old, new = _ref_subproof_roots(size1, size2, True, proof, root1)
    except _MismatchError:
        return False
    return old == root1 and new == root2


# Fixtures ---------------------------------------------------------------------------------------------------

MAX_SIZE = 70
# One entry more than the largest tree, for checks against the next size up.
ENTRIES = [b""] + [f"entry {i}".encode() for i in range(1, MAX_SIZE + 1)]
REF = RefTree(ENTRIES)
STORE = REF.perfect_nodes(MAX_SIZE)
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


class CountingStore:
    """A node store for a tree of `size` leaves: records each lookup, refuses nodes not yet complete."""

    def __init__(self, size: int, nodes: Mapping[Node, bytes] = STORE) -> None:
        self.size = size
        self.nodes = nodes
        self.calls: list[list[Node]] = []

    def __call__(self, wanted: Sequence[Node]) -> dict[Node, bytes]:
        self.calls.append(list(wanted))
        for level, index in wanted:
            assert (index + 1) << level <= self.size, (
                f"node {(level, index)} does not exist at size {self.size}"
            )
        return {node: self.nodes[node] for node in wanted}


# Hashing and node arithmetic --------------------------------------------------------------------------------


def test_hashes_match_rfc6962_known_answers() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert leaf_hash(b"L123456").hex() == "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    assert (
        node_hash(b"N123", b"N456").hex()
        == "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


def test_range_nodes_follow_the_rfc_split() -> None:
    assert range_nodes(0, 0) == []
    assert range_nodes(0, 1) == [(0, 0)]
    assert range_nodes(0, 7) == [(2, 0), (1, 2), (0, 6)]
    assert range_nodes(4, 7) == [(1, 2), (0, 6)]
    assert range_nodes(8, 16) == [(3, 1)]
    assert range_nodes(64, 70) == [(2, 16), (1, 34)]
    for bad in [(1, 3), (2, 6), (3, 5), (-1, 2), (5, 4)]:
        with pytest.raises(ValueError, match="range"):
            range_nodes(*bad)


def test_fold_of_range_nodes_is_mth_of_every_subtree_range() -> None:
    # Every node of every RFC tree up to MAX_SIZE leaves is a range the sequencer may be asked to fold.
    def ranges(lo: int, hi: int) -> list[tuple[int, int]]:
        if hi - lo == 1:
            return [(lo, hi)]
        k = _split(hi - lo)
        return [(lo, hi), *ranges(lo, lo + k), *ranges(lo + k, hi)]

    checked = set()
    for n in range(1, MAX_SIZE + 1):
        for lo, hi in ranges(0, n):
            if (lo, hi) not in checked:
                checked.add((lo, hi))
                assert fold([STORE[node] for node in range_nodes(lo, hi)]) == REF.mth(lo, hi), (lo, hi)
    with pytest.raises(ValueError, match="no hashes"):
        fold([])


# Known answers: the RFC 6962 reference tree (as in transparency-dev/merkle and Certificate Transparency) ----

KAT_ENTRIES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
KAT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, proof)
KAT_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
# (size1, size2, proof)
KAT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
KAT_REF = RefTree(KAT_ENTRIES)
KAT_STORE = KAT_REF.perfect_nodes(len(KAT_ENTRIES))


def test_reference_tree_roots() -> None:
    compact = CompactRange()
    for size, want in enumerate(KAT_ROOTS, start=1):
        compact.append(leaf_hash(KAT_ENTRIES[size - 1]))
        assert compact.root().hex() == want
        assert root(size, CountingStore(size, KAT_STORE)).hex() == want
        assert KAT_REF.mth(0, size).hex() == want  # the reference itself is right


@pytest.mark.parametrize(("index", "size", "proof"), KAT_INCLUSION)
def test_reference_tree_inclusion_proofs(index: int, size: int, proof: list[str]) -> None:
    got = inclusion_proof(index, size, CountingStore(size, KAT_STORE))
    assert [h.hex() for h in got] == proof
    verify_inclusion(leaf_hash(KAT_ENTRIES[index]), index, size, got, bytes.fromhex(KAT_ROOTS[size - 1]))


@pytest.mark.parametrize(("size1", "size2", "proof"), KAT_CONSISTENCY)
def test_reference_tree_consistency_proofs(size1: int, size2: int, proof: list[str]) -> None:
    got = consistency_proof(size1, size2, CountingStore(size2, KAT_STORE))
    assert [h.hex() for h in got] == proof
    verify_consistency(
        size1, size2, got, bytes.fromhex(KAT_ROOTS[size1 - 1]), bytes.fromhex(KAT_ROOTS[size2 - 1])
    )


# Exhaustive comparison with the reference -------------------------------------------------------------------


def test_root_of_every_size() -> None:
    assert root(0, CountingStore(0)) == EMPTY_ROOT == REF.mth(0, 0)
    for size in range(1, MAX_SIZE + 1):
        store = CountingStore(size)
        assert root(size, store) == REF.mth(0, size)
        assert len(store.calls) == 1


def test_inclusion_proofs_for_every_index_of_every_size() -> None:
    for size in range(1, MAX_SIZE + 1):
        tree_root = REF.mth(0, size)
        for index in range(size):
            store = CountingStore(size)
            proof = inclusion_proof(index, size, store)
            assert proof == REF.path(index, 0, size), (index, size)
            assert len(store.calls) == (1 if size > 1 else 0)
            assert [fold([STORE[n] for n in group]) for group in inclusion_proof_nodes(index, size)] == proof
            assert root_from_inclusion_proof(REF.leaf(index), index, size, proof) == tree_root
            verify_inclusion(REF.leaf(index), index, size, proof, tree_root)


def test_consistency_proofs_for_every_pair_of_sizes() -> None:
    for size2 in range(0, MAX_SIZE + 1):
        root2 = REF.mth(0, size2)
        for size1 in range(0, size2 + 1):
            store = CountingStore(size2)
            proof = consistency_proof(size1, size2, store)
            want = REF.proof(size1, size2) if 0 < size1 < size2 else []
            assert proof == want, (size1, size2)
            assert len(store.calls) == (1 if want else 0)
            assert [
                fold([STORE[n] for n in group]) for group in consistency_proof_nodes(size1, size2)
            ] == proof
            verify_consistency(size1, size2, proof, REF.mth(0, size1), root2)


def test_proof_generation_rejects_impossible_requests() -> None:
    for index, size in [(0, 0), (3, 3), (-1, 4), (5, 4)]:
        with pytest.raises(ValueError, match="not in a tree"):
            inclusion_proof_nodes(index, size)
    with pytest.raises(ValueError, match="larger than"):
        consistency_proof_nodes(5, 4)
    with pytest.raises(ValueError, match="negative"):
        consistency_proof_nodes(-1, 4)


def test_missing_stored_node_is_reported() -> None:
    def lossy(wanted: Sequence[Node]) -> dict[Node, bytes]:
        return {node: STORE[node] for node in wanted[1:]}

    with pytest.raises(LookupError, match="node store lacks"):
        inclusion_proof(3, 7, lossy)
    with pytest.raises(LookupError, match="node store lacks"):
        consistency_proof(3, 7, lossy)
    with pytest.raises(LookupError, match="node store lacks"):
        root(7, lossy)


# Corruption -------------------------------------------------------------------------------------------------

CORRUPTION_SIZES = [*range(1, 34), 63, 64, 65, 70]


def _flip(h: bytes, bit: int = 3) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


def _accepts_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes) -> bool:
    try:
        verify_inclusion(leaf, index, size, proof, root_hash)
    except ProofError:
        return False
    return True


def _accepts_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> bool:
    try:
        verify_consistency(size1, size2, proof, root1, root2)
    except ProofError:
        return False
    return True


def _inclusion_corruptions(
    index: int, size: int, leaf: bytes, proof: list[bytes], tree_root: bytes
) -> dict[str, tuple[bytes, int, int, list[bytes], bytes]]:
    other = REF.leaf((index + 1) % MAX_SIZE)
    cases: dict[str, tuple[bytes, int, int, list[bytes], bytes]] = {
        "index - 1": (leaf, index - 1, size, proof, tree_root),
        "index + 1": (leaf, index + 1, size, proof, tree_root),
        "index ^ 2": (leaf, index ^ 2, size, proof, tree_root),
        "size * 2": (leaf, index, size * 2, proof, tree_root),
        "size / 2": (leaf, index, size // 2, proof, tree_root),
        "leaf of another entry": (other, index, size, proof, tree_root),
        "wrong-length leaf": (b"WrongLeaf", index, size, proof, tree_root),
        "empty-tree root": (leaf, index, size, proof, EMPTY_ROOT),
        "random root": (leaf, index, size, proof, SOME_HASH),
        "trailing garbage": (leaf, index, size, [*proof, b""], tree_root),
        "trailing root": (leaf, index, size, [*proof, tree_root], tree_root),
        "trailing hash": (leaf, index, size, [*proof, SOME_HASH], tree_root),
        "preceding garbage": (leaf, index, size, [b"", *proof], tree_root),
        "preceding root": (leaf, index, size, [tree_root, *proof], tree_root),
    }
    for i in range(len(proof)):
        cases[f"proof[{i}] bit flipped"] = (
            leaf,
            index,
            size,
            [*proof[:i], _flip(proof[i]), *proof[i + 1 :]],
            tree_root,
        )
    if proof:
        cases["last hash removed"] = (leaf, index, size, proof[:-1], tree_root)
        cases["first hash removed"] = (leaf, index, size, proof[1:], tree_root)
        cases["empty proof"] = (leaf, index, size, [], tree_root)
    else:
        cases["non-empty proof where empty expected"] = (leaf, index, size, [SOME_HASH], tree_root)
    if len(proof) > 1:
        cases["inserted hash"] = (leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], tree_root)
    return cases


def test_corrupted_inclusion_proofs_are_rejected() -> None:
    for size in CORRUPTION_SIZES:
        tree_root = REF.mth(0, size)
        for index in range(size):
            leaf, proof = REF.leaf(index), REF.path(index, 0, size)
            for what, args in _inclusion_corruptions(index, size, leaf, proof, tree_root).items():
                assert not ref_inclusion_ok(*args), f"{what} at ({index}, {size}) fools the reference too"
                assert not _accepts_inclusion(*args), f"{what} accepted at ({index}, {size})"


def test_inclusion_with_a_neighbouring_size_agrees_with_the_reference() -> None:
    # RFC 6962 proofs bind the size only through their shape: the same proof and root often also "prove" the
    # leaf in a tree one larger or smaller (the last subtree's hash cannot be told from a leaf's). The signed
    # checkpoint is what binds a size to a root. Here the verdict must be exactly the reference verifier's,
    # and a size that needs a different proof length must be refused.
    accepted = 0
    for size in CORRUPTION_SIZES:
        tree_root = REF.mth(0, size)
        for index in range(size):
            leaf, proof = REF.leaf(index), REF.path(index, 0, size)
            for other_size in (size - 1, size + 1):
                verdict = _accepts_inclusion(leaf, index, other_size, proof, tree_root)
                assert verdict == ref_inclusion_ok(leaf, index, other_size, proof, tree_root)
                if index < other_size and len(REF.path(index, 0, other_size)) != len(proof):
                    assert not verdict, (index, size, other_size)
                accepted += verdict
    assert accepted  # the differential check above saw both verdicts


def _consistency_corruptions(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes
) -> dict[str, tuple[int, int, list[bytes], bytes, bytes]]:
    cases: dict[str, tuple[int, int, list[bytes], bytes, bytes]] = {
        "size1 - 1": (size1 - 1, size2, proof, root1, root2),
        "size1 + 1": (size1 + 1, size2, proof, root1, root2),
        "size1 ^ 2": (size1 ^ 2, size2, proof, root1, root2),
        "size2 * 2": (size1, size2 * 2, proof, root1, root2),
        "size2 / 2": (size1, size2 // 2, proof, root1, root2),
        "wrong-length root1": (size1, size2, proof, b"WrongRoot", root2),
        "wrong-length root2": (size1, size2, proof, root1, b"WrongRoot"),
        "random root1": (size1, size2, proof, SOME_HASH, root2),
        "random root2": (size1, size2, proof, root1, SOME_HASH),
        "swapped roots": (size1, size2, proof, root2, root1),
        "empty proof": (size1, size2, [], root1, root2),
        "trailing garbage": (size1, size2, [*proof, b""], root1, root2),
        "trailing root1": (size1, size2, [*proof, root1], root1, root2),
        "trailing root2": (size1, size2, [*proof, root2], root1, root2),
        "preceding garbage": (size1, size2, [b"", *proof], root1, root2),
        "preceding root1": (size1, size2, [root1, *proof], root1, root2),
        "preceding root2": (size1, size2, [root2, *proof], root1, root2),
        "preceding proof[0]": (size1, size2, [proof[0], *proof], root1, root2),
        "truncated proof": (size1, size2, proof[:-1], root1, root2),
        "first hash removed": (size1, size2, proof[1:], root1, root2),
        "size1 > size2": (size2, size1, proof, root2, root1),
    }
    for i in range(len(proof)):
        cases[f"proof[{i}] bit flipped"] = (
            size1,
            size2,
            [*proof[:i], _flip(proof[i], 4), *proof[i + 1 :]],
            root1,
            root2,
        )
    if len(proof) > 1:
        cases["inserted hash"] = (size1, size2, [proof[0], SOME_HASH, *proof[1:]], root1, root2)
    return cases


def test_corrupted_consistency_proofs_are_rejected() -> None:
    for size2 in CORRUPTION_SIZES:
        root2 = REF.mth(0, size2)
        for size1 in range(1, size2):
            root1, proof = REF.mth(0, size1), REF.proof(size1, size2)
            for what, args in _consistency_corruptions(size1, size2, proof, root1, root2).items():
                assert not ref_consistency_ok(*args), f"{what} at ({size1}, {size2}) fools the reference too"
                assert not _accepts_consistency(*args), f"{what} accepted at ({size1}, {size2})"


def test_consistency_with_a_neighbouring_size2_agrees_with_the_reference() -> None:
    accepted = 0
    for size2 in CORRUPTION_SIZES:
        root2 = REF.mth(0, size2)
        for size1 in range(1, size2):
            root1, proof = REF.mth(0, size1), REF.proof(size1, size2)
            for other in (size2 - 1, size2 + 1):
                verdict = _accepts_consistency(size1, other, proof, root1, root2)
                assert verdict == ref_consistency_ok(size1, other, proof, root1, root2)
                if size1 < other and len(REF.proof(size1, other)) != len(proof):
                    assert not verdict, (size1, size2, other)
                accepted += verdict
    assert accepted


def test_consistency_edge_cases() -> None:
    r0, r1, r2 = EMPTY_ROOT, REF.mth(0, 1), REF.mth(0, 2)
    ok: list[tuple[int, int, list[bytes], bytes, bytes]] = [
        (0, 0, [], r0, r0),
        (1, 1, [], r1, r1),
        (2, 2, [], r2, r2),
        (0, 2, [], r0, r2),  # the empty tree is a prefix of every tree
    ]
    bad: list[tuple[int, int, list[bytes], bytes, bytes]] = [
        (0, 0, [], r0, r1),  # equal sizes, different roots
        (1, 1, [], r1, r2),
        (0, 0, [r0], r0, r0),  # equal sizes with a non-empty proof
        (1, 1, [r0], r1, r1),
        (2, 2, [REF.leaf(0)], r2, r2),
        (0, 1, [r0], r0, r1),  # from the empty tree with a non-empty proof
        (0, 2, [REF.leaf(0)], r0, r2),
        (0, 1, [], r1, r1),  # "old" root is not the empty tree's
        (1, 0, [], r1, r0),  # size1 > size2
        (2, 1, [], r2, r1),
        (2, 1, [REF.leaf(1)], r2, r1),
        (1, 2, [], r1, r2),  # empty proof where one is needed
        (-1, 2, [], r1, r2),
    ]
    for args in ok:
        verify_consistency(*args)
        assert ref_consistency_ok(*args)
    for args in bad:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    with pytest.raises(ProofError, match="cannot shrink"):
        verify_consistency(3, 2, [REF.leaf(2)], REF.mth(0, 3), r2)
    with pytest.raises(ProofError, match="has 2 hashes, expected 3"):
        verify_consistency(6, 8, REF.proof(6, 8)[:-1], REF.mth(0, 6), REF.mth(0, 8))
    with pytest.raises(ProofError, match="does not lead to root1"):
        verify_consistency(6, 8, REF.proof(6, 8), REF.mth(0, 5), REF.mth(0, 8))
    with pytest.raises(ProofError, match="does not lead to root2"):
        verify_consistency(6, 8, REF.proof(6, 8), REF.mth(0, 6), REF.mth(0, 7))


def test_inclusion_edge_cases() -> None:
    leaf = REF.leaf(0)
    verify_inclusion(leaf, 0, 1, [], leaf)
    for index, size in [(0, 0), (1, 0), (1, 1), (2, 1), (-1, 1)]:
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, [], leaf)
    with pytest.raises(ProofError, match="expected 0"):
        verify_inclusion(leaf, 0, 1, [leaf], leaf)
    with pytest.raises(ProofError, match="leaf hash is 0 bytes"):
        verify_inclusion(b"", 0, 1, [], leaf)
    with pytest.raises(ProofError, match="root hash is 0 bytes"):
        verify_inclusion(leaf, 0, 1, [], b"")
    with pytest.raises(ProofError, match="expected 3"):
        verify_inclusion(REF.leaf(2), 2, 8, REF.path(2, 0, 8)[:-1], REF.mth(0, 8))
    with pytest.raises(ProofError, match="does not lead to the root"):
        verify_inclusion(REF.leaf(3), 2, 8, REF.path(2, 0, 8), REF.mth(0, 8))


# CompactRange -----------------------------------------------------------------------------------------------


def test_compact_range_roots_and_emitted_nodes() -> None:
    compact = CompactRange()
    assert compact.root() == EMPTY_ROOT
    emitted: dict[Node, bytes] = {}
    for size in range(1, MAX_SIZE + 1):
        created = compact.append(REF.leaf(size - 1))
        # Exactly the perfect nodes of level >= 1 that end at this leaf, lowest first.
        want = [
            (level, (size >> level) - 1, REF.mth(size - (1 << level), size))
            for level in range(1, size.bit_length())
            if size % (1 << level) == 0
        ]
        assert created == want, size
        emitted.update({(level, index): h for level, index, h in created})
        assert compact.size == size
        assert compact.root() == REF.mth(0, size)
        assert compact.nodes() == range_nodes(0, size)
        assert compact.hashes == [STORE[node] for node in range_nodes(0, size)]
    # Leaves plus emitted nodes are the whole store: a sequencer that saves them can answer every proof.
    emitted.update({(0, i): REF.leaf(i) for i in range(MAX_SIZE)})
    assert emitted == STORE


def test_compact_range_resumes_from_stored_state() -> None:
    for size in range(0, 40):
        compact = CompactRange(size, [STORE[node] for node in range_nodes(0, size)])
        assert compact.root() == REF.mth(0, size)
        for next_size in range(size + 1, size + 8):
            compact.append(REF.leaf(next_size - 1))
            assert compact.root() == REF.mth(0, next_size)


def test_compact_range_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="subtree roots"):
        CompactRange(3, [REF.leaf(0)])
    with pytest.raises(ValueError, match="bytes"):
        CompactRange(1, [b"short"])
    with pytest.raises(ValueError, match="negative"):
        CompactRange(-1)
    with pytest.raises(ValueError, match="leaf hash"):
        CompactRange().append(b"short")


def test_compact_range_over_a_larger_log_matches_the_reference() -> None:
    big = RefTree([i.to_bytes(4, "big") for i in range(1030)])
    compact = CompactRange()
    nodes: dict[Node, bytes] = {}
    for i in range(1030):
        nodes[(0, i)] = big.leaf(i)
        for level, index, h in compact.append(big.leaf(i)):
            nodes[(level, index)] = h
        if (i + 1) in (1, 511, 512, 513, 1000, 1023, 1024, 1025, 1030):
            assert compact.root() == big.mth(0, i + 1)
    # Proofs served from the streamed nodes alone.
    get: Callable[[Sequence[Node]], Mapping[Node, bytes]] = lambda wanted: {n: nodes[n] for n in wanted}  # noqa: E731
    for index, size in [(0, 1030), (1029, 1030), (517, 1025), (1023, 1024)]:
        proof = inclusion_proof(index, size, get)
        assert proof == big.path(index, 0, size)
        verify_inclusion(big.leaf(index), index, size, proof, big.mth(0, size))
    for size1, size2 in [(1, 1030), (1000, 1030), (512, 1025), (1023, 1024)]:
        proof = consistency_proof(size1, size2, get)
        assert proof == big.proof(size1, size2)
        verify_consistency(size1, size2, proof, big.mth(0, size1), big.mth(0, size2))
