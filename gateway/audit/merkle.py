"""The RFC 9162 (Certificate Transparency 2.0) Merkle tree: hashes, proofs and their verification.

Leaves are hashed as SHA-256(0x00 || data) and interior nodes as SHA-256(0x01 || left || right), so a
leaf can never pass for a node. ``Frontier`` is the compact right edge a writer keeps to append in
O(log n); ``MerkleTree`` holds every level over a fixed list of leaf hashes to answer proofs in
O(log^2 n); the two ``verify_*`` functions are the RFC's own verification algorithms.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "MerkleTree",
    "leaf_hash",
    "node_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly less than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class Frontier:
    """Roots of the perfect subtrees that make up a tree of ``size`` leaves, left to right.

    That is all a writer needs to append a leaf and to compute the root: at most log2(n) hashes.
    """

    __slots__ = ("nodes", "size")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if len(nodes) != size.bit_count():
            raise ValueError(f"a tree of {size} leaves has {size.bit_count()} frontier nodes, not {len(nodes)}")
        self.size = size
        self.nodes = list(nodes)

    @classmethod
    def from_bytes(cls, size: int, blob: bytes) -> Frontier:
        nodes = [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]
        if len(blob) % HASH_SIZE:
            raise ValueError("frontier blob is not a whole number of hashes")
        return cls(size, nodes)

    def to_bytes(self) -> bytes:
        return b"".join(self.nodes)

    def copy(self) -> Frontier:
        return Frontier(self.size, self.nodes)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash: merge equal-sized subtrees as a binary counter carries."""
        node = leaf
        size = self.size
        while size & 1:
            node = node_hash(self.nodes.pop(), node)
            size >>= 1
        self.nodes.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        root = self.nodes[-1]
        for node in reversed(self.nodes[:-1]):
            root = node_hash(node, root)
        return root


class MerkleTree:
    """Every level of the tree over a fixed list of leaf hashes, for proofs about any prefix of it."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self._levels: list[list[bytes]] = [list(leaves)]
        level = self._levels[0]
        while len(level) > 1:
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            self._levels.append(level)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def _hash(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]); perfect aligned subtrees come from the stored levels."""
        n = hi - lo
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and lo % n == 0:
            height = n.bit_length() - 1
            return self._levels[height][lo >> height]
        k = _split(n)
        return node_hash(self._hash(lo, lo + k), self._hash(lo + k, hi))

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} is outside 0..{self.size}")

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        self._check_size(size)
        return self._hash(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[0:size]) from RFC 9162 section 2.1.3.1."""
        self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf {index} is not in a tree of {size}")
        return self._path(index, 0, size)

    def _path(self, m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self._path(m, lo, lo + k), self._hash(lo + k, hi)]
        return [*self._path(m - k, lo + k, hi), self._hash(lo, lo + k)]

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """PROOF(old_size, D[0:new_size]) from RFC 9162 section 2.1.4.1 (empty when nothing to prove)."""
        self._check_size(new_size)
        if not 0 <= old_size <= new_size:
            raise ValueError(f"cannot prove {old_size} -> {new_size}")
        if old_size in (0, new_size):
            return []
        return self._subproof(old_size, 0, new_size, True)

    def _subproof(self, m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if whole else [self._hash(lo, hi)]
        k = _split(n)
        if m <= k:
            return [*self._subproof(m, lo, lo + k, whole), self._hash(lo + k, hi)]
        return [*self._subproof(m - k, lo + k, hi, False), self._hash(lo, lo + k)]


def _well_formed(hashes: Sequence[bytes]) -> bool:
    return all(len(h) == HASH_SIZE for h in hashes)


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2: does ``proof`` put ``leaf`` at ``index`` of the tree with ``root``?"""
    if not 0 <= index < size or not _well_formed([leaf, root, *proof]):
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2: is the tree ``new_root`` an append-only extension of ``old_root``?"""
    if not 0 <= old_size <= new_size or not _well_formed([old_root, new_root, *proof]):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
