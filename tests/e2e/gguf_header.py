"""A minimal GGUF (v2/v3) header walker for the e2e test scripts.

  h = parse(data)          # data: the whole file's bytes
  h.version, h.n_kv, h.kv_bytes (raw metadata section), h.alignment,
  h.strings: {key: value} of the string-valued metadata (both str),
  h.tensors: [(name, ggml_type, ne, offset)], h.tensor_info_bytes,
  h.data_start (absolute offset of the tensor data section)
"""
import struct
from dataclasses import dataclass, field

GGUF_MAGIC = 0x46554747
# Sizes of the fixed-size metadata value types (GGUF spec); 8 is a string,
# 9 an array.
_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


@dataclass
class Header:
    version: int = 0
    n_kv: int = 0
    kv_bytes: bytes = b""
    alignment: int = 32
    strings: dict = field(default_factory=dict)
    tensors: list = field(default_factory=list)
    tensor_info_bytes: bytes = b""
    data_start: int = 0


def parse(data):
    pos = 0

    def rd(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v

    def rstr():
        nonlocal pos
        (n,) = rd("Q")
        s = data[pos:pos + n]
        pos += n
        return s

    def skip(t):
        nonlocal pos
        if t in _SCALAR_SIZES:
            pos += _SCALAR_SIZES[t]
        elif t == 8:
            rstr()
        else:
            et, n = rd("IQ")
            for _ in range(n):
                skip(et)

    h = Header()
    magic, h.version, n_tensors, h.n_kv = rd("IIQQ")
    if magic != GGUF_MAGIC:
        raise ValueError("not a GGUF file")
    kv_start = pos
    for _ in range(h.n_kv):
        key = rstr()
        (t,) = rd("I")
        if key == b"general.alignment" and t == 4:
            (h.alignment,) = struct.unpack_from("<I", data, pos)
        if t == 8:
            h.strings[key.decode("utf-8", "replace")] = rstr().decode("utf-8", "replace")
            continue
        skip(t)
    h.kv_bytes = data[kv_start:pos]
    ti_start = pos
    for _ in range(n_tensors):
        name = rstr().decode("utf-8", "replace")
        (nd,) = rd("I")
        ne = list(rd("Q" * nd))
        t, off = rd("IQ")
        h.tensors.append((name, t, ne, off))
    h.tensor_info_bytes = data[ti_start:pos]
    h.data_start = (pos + h.alignment - 1) // h.alignment * h.alignment
    return h
