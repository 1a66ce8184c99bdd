"""Canonical forms of JSON values under compare rules: equal forms mean equal values.

Used where values are matched rather than walked pairwise: unordered arrays (multisets of
element forms), keys of keyed arrays, and sorted arrays of scalars. A form is orjson text with
sorted keys when no pattern reaches inside, else a digest built bottom-up with an explicit
stack (comparing or hashing deep tuples would recurse in C) that drops ignored members and
`null_is_missing` nulls, applies normalizers, and digests the parts of unordered arrays sorted.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeAlias

import orjson

from shadow.compare.normalize import Norm, decimal_text, json_kind, normalize
from shadow.compare.pointers import State

__all__ = ["all_scalars", "canonical_keys", "fingerprint", "leaf_text"]

_SCALARS = frozenset(("null", "bool", "int", "float", "str"))
_Item: TypeAlias = "tuple[Any, Any, State, Norm | None]"  # (key or None, value, state, norm)


def all_scalars(values: list[Any]) -> bool:
    return all(json_kind(v) in _SCALARS for v in values)


def canonical_keys(
    p: list[Any],
    c: list[Any],
    indices_p: list[int],
    indices_c: list[int],
    state: State,
    norm: Norm | None,
) -> tuple[list[bytes], list[bytes]]:
    """Byte forms of the chosen elements; equal forms mean equal elements under the rules."""
    if norm is None and not state.live:
        # Both sides must use the same form, hence one try around both.
        try:
            dumps, option = orjson.dumps, orjson.OPT_SORT_KEYS
            return (
                [dumps(p[i], option=option) for i in indices_p],
                [dumps(c[i], option=option) for i in indices_c],
            )
        except orjson.JSONEncodeError:  # big ints, deep nesting, lone surrogates
            pass
    return (
        [fingerprint(p[i], state.step_index(i), norm) for i in indices_p],
        [fingerprint(c[i], state.step_index(i), norm) for i in indices_c],
    )


def fingerprint(value: Any, state: State, norm: Norm | None) -> bytes:
    """A digest of `value` as the rules see it, built bottom-up with an explicit stack.

    Digests rather than nested tuples: comparing or hashing deep tuples recurses in C. Ignored
    members are dropped, normalizations applied, and unordered arrays digest their sorted parts.
    """
    top: list[bytes] = []
    # Open containers: (tag, key digest, digests of finished children, children still to do).
    frames: list[tuple[bytes, bytes, list[bytes], list[_Item]]] = [
        (b"", b"", top, [(None, value, state, norm)])
    ]
    while frames:
        tag, key, parts, pending = frames[-1]
        if not pending:
            frames.pop()
            if frames:
                ordered = parts if tag == b"[" else sorted(parts)
                frames[-1][2].append(key + _digest(tag + b"".join(ordered)))
            continue
        child_key, node, node_state, node_norm = pending.pop()
        prefix = b"" if child_key is None else _digest(b"k" + _utf8(str(child_key)))
        opened = _open(node, node_state, node_norm)
        if opened is None:
            parts.append(prefix + _digest(leaf_text(node, node_state, node_norm)))
        else:
            frames.append((opened[0], prefix, [], opened[1]))
    return top[0]


def _open(node: Any, state: State, norm: Norm | None) -> tuple[bytes, list[_Item]] | None:
    """The tag and children of a container that is not ignored, else None."""
    kind = json_kind(node)
    if state.ignored or kind not in ("dict", "list"):
        return None
    norm = state.norm or norm
    if kind == "dict":
        children = [(k, v, state.step(k), norm) for k, v in node.items()]
        return b"{", [
            child
            for child in children
            if not child[2].ignored and not (child[2].null_is_missing and child[1] is None)
        ]
    items = [(None, node[i], state.step_index(i), norm) for i in range(len(node) - 1, -1, -1)]
    # Sorted, keyed and plain unordered arrays are all equal exactly when equal as multisets.
    bag = state.unordered or state.unordered_key is not None
    bag = bag or (state.sorted and all_scalars(node))
    return (b"(" if bag else b"["), items


def leaf_text(node: Any, state: State, norm: Norm | None) -> bytes:
    """Unambiguous bytes for a scalar: a type tag, then its (normalized) value."""
    if state.ignored:
        return b"x"
    norm = state.norm or norm
    normal = None if norm is None else normalize(node, norm)
    if isinstance(normal, datetime):
        return b"t" + normal.isoformat().encode()
    if isinstance(normal, Decimal):
        return b"d" + decimal_text(normal).encode()
    if isinstance(normal, str):
        return b"c" + _utf8(normal)
    if isinstance(normal, tuple):  # volatile: the JSON type alone
        return b"v" + str(normal[1]).encode()
    kind = json_kind(node)
    if kind in ("bool", "null"):
        return b"b" + repr(node).encode()
    if kind == "int":
        return b"i" + hex(node).encode()  # hex: no digit limit, unlike str() of a huge int
    if kind == "float":
        return b"f" + (float(node) + 0.0).hex().encode()  # + 0.0 folds -0.0 into 0.0, as == does
    return (b"s" if kind == "str" else kind.encode() + b":") + _utf8(str(node))


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")
