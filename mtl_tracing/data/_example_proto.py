"""Minimal ``tf.train.Example`` wire-format codec (bytes and int64 features), no TensorFlow.

``Example {Features features = 1}``, ``Features {map<string, Feature> feature = 1}``,
``Feature {oneof {BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list =
3}}``, ``BytesList {repeated bytes value = 1}``, ``Int64List {repeated int64 value = 1
[packed]}``. Float lists are skipped (Stack Overflow has none).
"""

from __future__ import annotations

__all__ = ["decode_example", "encode_example"]


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes):
    """Yield (field number, wire type, value) with LEN values as bytes."""
    i = 0
    while i < len(buf):
        tag, i = _varint(buf, i)
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise ValueError("truncated length-delimited field")
            v, i = buf[i : i + n], i + n
        elif wt == 1:
            v, i = buf[i : i + 8], i + 8
        elif wt == 5:
            v, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        yield num, wt, v


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def decode_example(buf: bytes) -> dict:
    """``{name: [bytes, ...] or [int, ...]}`` of a serialized ``tf.train.Example``."""
    out: dict = {}
    for num, wt, features in _fields(buf):
        if num != 1 or wt != 2:
            continue
        for n2, w2, entry in _fields(features):
            if n2 != 1 or w2 != 2:
                continue
            key, value = None, None
            for n3, w3, v in _fields(entry):
                if n3 == 1 and w3 == 2:
                    key = v.decode("utf-8")
                elif n3 == 2 and w3 == 2:
                    value = v
            if key is None or value is None:
                continue
            vals: list = []
            for kind, w4, lst in _fields(value):
                if kind == 1 and w4 == 2:  # BytesList
                    vals += [v for n, w, v in _fields(lst) if n == 1 and w == 2]
                elif kind == 3 and w4 == 2:  # Int64List (packed or not)
                    for n, w, v in _fields(lst):
                        if n == 1 and w == 2:
                            j = 0
                            while j < len(v):
                                x, j = _varint(v, j)
                                vals.append(_signed(x))
                        elif n == 1 and w == 0:
                            vals.append(_signed(v))
            out[key] = vals
    return out


def _enc_varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _len_field(num: int, payload: bytes) -> bytes:
    return _enc_varint(num << 3 | 2) + _enc_varint(len(payload)) + payload


def encode_example(features: dict) -> bytes:
    """Serialize ``{name: bytes | str | int | list of those}`` as a ``tf.train.Example``."""
    entries = b""
    for key, value in features.items():
        vals = value if isinstance(value, list | tuple) else [value]
        if all(isinstance(v, int) for v in vals):
            packed = b"".join(_enc_varint(v) for v in vals)
            feature = _len_field(3, _len_field(1, packed))
        else:
            blist = b"".join(
                _len_field(1, v.encode("utf-8") if isinstance(v, str) else bytes(v)) for v in vals
            )
            feature = _len_field(1, blist)
        entries += _len_field(1, _len_field(1, key.encode("utf-8")) + _len_field(2, feature))
    return _len_field(1, entries)
