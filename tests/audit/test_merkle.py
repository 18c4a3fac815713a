"""The Merkle tree against the published RFC 6962 / RFC 9162 test vectors and a from-the-RFC reference.

The vectors (8 leaves, their roots, inclusion and consistency proofs) are those of the Certificate
Transparency Go implementation, github.com/transparency-dev/merkle, file proof/verify_test.go
(variables ``leaves``, ``roots``, ``inclusionProofs``, ``consistencyProofs``; in that file leaf
numbers are 1-based, here indices are 0-based). The same tree appears in RFC 6962's reference tests.
"""

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    MerkleTree,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f"]]  # fmt: skip
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [  # (leaf index, tree size, proof)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CONSISTENCY = [  # (old size, new size, proof)
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip

HASHES = [leaf_hash(data) for data in LEAVES]
TREE = MerkleTree(HASHES)


def reference_root(leaves: Sequence[bytes]) -> bytes:
    """MTH straight from RFC 9162 section 2.1.1, over leaf hashes."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])).digest()


def unhex(proof: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in proof]


def flipped(proof: list[bytes], i: int) -> list[bytes]:
    return [bytes([h[0] ^ 0x10]) + h[1:] if j == i else h for j, h in enumerate(proof)]


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert Frontier().root() == EMPTY_ROOT == MerkleTree([]).root()


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_published_vectors(size: int) -> None:
    frontier = Frontier()
    for h in HASHES[:size]:
        frontier.append(h)
    assert frontier.root().hex() == ROOTS[size - 1]
    assert TREE.root(size).hex() == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_vectors_match_and_corruptions_fail(index: int, size: int, proof: list[str]) -> None:
    path = unhex(proof)
    root, leaf = bytes.fromhex(ROOTS[size - 1]), HASHES[index]
    assert TREE.inclusion_proof(index, size) == path
    assert verify_inclusion(index, size, leaf, path, root)
    # The corruptions proof/verify_test.go probes with (corruptInclusionProof).
    wrong = [
        (index - 1, size, leaf, path, root),
        (index + 1, size, leaf, path, root),
        (index ^ 2, size, leaf, path, root),
        (index, size * 2, leaf, path, root),
        (index, size // 2, leaf, path, root),
        (index, size, leaf_hash(b"WrongLeaf"), path, root),
        (index, size, leaf, path, EMPTY_ROOT),
        (index, size, leaf, [*path, b""], root),
        (index, size, leaf, [*path, root], root),
        (index, size, leaf, [b"", *path], root),
        (index, size, leaf, [root, *path], root),
        (index, size, leaf, path[:-1], root),
        *[(index, size, leaf, flipped(path, i), root) for i in range(len(path))],
    ]
    for args in wrong:
        assert not verify_inclusion(*args), args


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_vectors_match_and_corruptions_fail(old: int, new: int, proof: list[str]) -> None:
    path = unhex(proof)
    old_root, new_root = bytes.fromhex(ROOTS[old - 1]), bytes.fromhex(ROOTS[new - 1])
    assert TREE.consistency_proof(old, new) == path
    assert verify_consistency(old, new, old_root, new_root, path)
    # The corruptions proof/verify_test.go probes with (corruptConsistencyProof).
    wrong = [
        (old - 1, new, old_root, new_root, path),
        (old + 1, new, old_root, new_root, path),
        (old ^ 2, new, old_root, new_root, path),
        (old, new * 2, old_root, new_root, path),
        (old, new // 2, old_root, new_root, path),
        (old, new, leaf_hash(b"WrongRoot"), new_root, path),
        (old, new, old_root, leaf_hash(b"WrongRoot"), path),
        (old, new, new_root, old_root, path),
        (old, new, old_root, new_root, []),
        (old, new, old_root, new_root, [*path, b""]),
        (old, new, old_root, new_root, [*path, old_root]),
        (old, new, old_root, new_root, [*path, new_root]),
        (old, new, old_root, new_root, [b"", *path]),
        (old, new, old_root, new_root, [old_root, *path]),
        (old, new, old_root, new_root, [new_root, *path]),
        (old, new, old_root, new_root, [path[0], *path]),
        (old, new, old_root, new_root, path[:-1]),
        *[(old, new, old_root, new_root, flipped(path, i)) for i in range(len(path))],
    ]
    for args in wrong:
        assert not verify_consistency(*args), args


def test_trivial_consistency_cases() -> None:
    root = bytes.fromhex(ROOTS[0])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, root, [])
    assert verify_consistency(1, 1, root, root, [])
    assert not verify_consistency(1, 1, root, EMPTY_ROOT, [])
    assert not verify_consistency(2, 1, root, root, [])
    assert not verify_consistency(1, 1, root, root, [root])


def test_single_leaf_inclusion_and_out_of_range_indices() -> None:
    assert verify_inclusion(0, 1, HASHES[0], [], HASHES[0])
    assert not verify_inclusion(0, 0, HASHES[0], [], EMPTY_ROOT)
    assert not verify_inclusion(1, 1, HASHES[0], [], HASHES[0])
    with pytest.raises(ValueError, match="not in a tree"):
        TREE.inclusion_proof(8, 8)
    with pytest.raises(ValueError, match="outside"):
        TREE.root(9)


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    a, b = HASHES[1], HASHES[2]
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert leaf_hash(a + b) != node_hash(a, b)


def test_frontier_round_trips_through_bytes_and_rejects_wrong_shapes() -> None:
    frontier = Frontier()
    for h in HASHES[:7]:
        frontier.append(h)
    again = Frontier.from_bytes(7, frontier.to_bytes())
    assert again.root() == frontier.root()
    assert len(again.nodes) == 3
    with pytest.raises(ValueError, match="frontier"):
        Frontier.from_bytes(8, frontier.to_bytes())


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[list[bytes], int, int]:
    n = draw(st.integers(1, 300))
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    size = draw(st.integers(1, n))
    return leaves, size, draw(st.integers(0, size - 1))


@given(tree_and_index())
def test_every_construction_agrees_and_every_proof_verifies(case: tuple[list[bytes], int, int]) -> None:
    leaves, size, index = case
    tree = MerkleTree(leaves)
    frontier = Frontier()
    for h in leaves[:size]:
        frontier.append(h)
    root = reference_root(leaves[:size])
    assert tree.root(size) == frontier.root() == root
    proof = tree.inclusion_proof(index, size)
    assert verify_inclusion(index, size, leaves[index], proof, root)
    assert not verify_inclusion(index, size, leaf_hash(b"other"), proof, root)
    if size > 1:
        assert not verify_inclusion((index + 1) % size, size, leaves[index], proof, root)
    old = index + 1  # any size from 1 to size
    consistency = tree.consistency_proof(old, size)
    assert verify_consistency(old, size, reference_root(leaves[:old]), root, consistency)
    for i in range(len(consistency)):
        assert not verify_consistency(old, size, reference_root(leaves[:old]), root, flipped(consistency, i))
