#!/usr/bin/env python3
"""Writes the GGUF reference fixtures under Tests/Fixtures/gguf with the `gguf` PyPI package.

The fixtures are the independent reference for swift-moe's GGUF reader, writer, dequantizers and
quantizers: everything in them is produced by gguf-py, never by swift-moe.

  gguf/all-metadata.gguf   every metadata value type (nested arrays, unicode, extremes) and
                           F32/F16/BF16/Q8_0/Q4_0 tensors quantized by gguf-py from seeded floats
                           (the F32 sources are stored next to them as `<name>.source`)
  gguf/all-metadata.json   what gguf-py's reader sees in that file (keys, types, values)
  gguf/dequant.gguf        for each type gguf-py can dequantize: `<TYPE>.raw` (random blocks with
                           sane scale fields) and `<TYPE>.expected` (gguf-py's dequantization, F32)
  gguf/ggml-types.json     gguf-py's GGML_QUANT_SIZES (block size, bytes per block)

Usage: python3 tools/make_gguf_fixtures.py [--out Tests/Fixtures]
Deterministic: the same gguf version gives the same bytes.
"""
import argparse
import importlib.metadata
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T, GGUFValueType as V

SEED = 20261123


def f16_field(rng, n, lo=-2.0, hi=2.0, positive=False):
    v = rng.uniform(0.01 if positive else lo, hi, size=n).astype(np.float16)
    return v.view(np.uint8).reshape(n, 2)


# Byte offsets of each type's floating-point scale fields inside one block, with their kind.
SCALE_FIELDS = {
    T.Q4_0: [(0, "f16")], T.Q4_1: [(0, "f16"), (2, "f16")],
    T.Q5_0: [(0, "f16")], T.Q5_1: [(0, "f16"), (2, "f16")],
    T.Q8_0: [(0, "f16")],
    T.Q2_K: [(80, "f16+"), (82, "f16+")], T.Q3_K: [(108, "f16")],
    T.Q4_K: [(0, "f16+"), (2, "f16+")], T.Q5_K: [(0, "f16+"), (2, "f16+")],
    T.Q6_K: [(208, "f16")],
    T.IQ4_NL: [(0, "f16")], T.IQ4_XS: [(0, "f16")],
    T.MXFP4: [(0, "e8m0")],
}


def random_blocks(rng, qtype, n_blocks):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    if qtype == T.F32:
        return rng.standard_normal(n_blocks).astype(np.float32).view(np.uint8)
    if qtype in (T.F16,):
        return rng.standard_normal(n_blocks).astype(np.float16).view(np.uint8)
    if qtype == T.BF16:
        return (rng.standard_normal(n_blocks).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for offset, kind in SCALE_FIELDS[qtype]:
        if kind.startswith("f16"):
            raw[:, offset:offset + 2] = f16_field(rng, n_blocks, positive=kind.endswith("+"))
        elif kind == "f32":
            raw[:, offset:offset + 4] = rng.uniform(-0.05, 0.05, size=n_blocks).astype(np.float32).view(np.uint8).reshape(n_blocks, 4)
        elif kind == "e8m0":
            raw[:, offset] = rng.integers(100, 150, size=n_blocks, dtype=np.uint8)
    return raw.reshape(-1)


def write_dequant(out_dir, rng):
    w = gguf.GGUFWriter(os.path.join(out_dir, "dequant.gguf"), arch="fixture")
    types = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K,
             T.Q4_K, T.Q5_K, T.Q6_K, T.IQ4_NL, T.IQ4_XS, T.MXFP4]
    for qtype in types:
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        n = 512 if block <= 256 else block * 2
        n_blocks = n // block
        raw = random_blocks(rng, qtype, n_blocks)
        expected = gguf.quants.dequantize(raw.reshape(2, -1), qtype).astype(np.float32)  # 2 rows
        assert np.all(np.isfinite(expected)), qtype.name
        w.add_tensor(f"{qtype.name}.raw", raw.reshape(2, -1), raw_dtype=qtype)
        w.add_tensor(f"{qtype.name}.expected", expected.reshape(2, n // 2))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_all_metadata(out_dir, rng):
    path = os.path.join(out_dir, "all-metadata.gguf")
    w = gguf.GGUFWriter(path, arch="fixture")
    w.add_uint8("test.uint8", 255)
    w.add_int8("test.int8", -128)
    w.add_uint16("test.uint16", 65535)
    w.add_int16("test.int16", -32768)
    w.add_uint32("test.uint32", 4294967295)
    w.add_int32("test.int32", -2147483648)
    w.add_float32("test.float32", 3.25)
    w.add_uint64("test.uint64", 18446744073709551615)
    w.add_int64("test.int64", -9223372036854775808)
    w.add_float64("test.float64", -1.0e300)
    w.add_bool("test.bool.true", True)
    w.add_bool("test.bool.false", False)
    w.add_string("test.string", "Grüße, 世界 🙂")
    w.add_string("test.string.empty", "")
    w.add_array("test.array.strings", ["a", "", "ünï", "<|im_start|>"])
    w.add_array("test.array.int32", [1, -2, 3, 2147483647])
    w.add_array("test.array.float32", [0.5, -1.5, 1e-3])
    w.add_array("test.array.bool", [True, False, True])
    w.add_key_value("test.array.uint8", [0, 1, 255], V.ARRAY, sub_type=V.UINT8)
    w.add_key_value("test.array.int64", [-1, 2**40], V.ARRAY, sub_type=V.INT64)
    w.add_key_value("test.array.float64", [0.25, -2.0], V.ARRAY, sub_type=V.FLOAT64)
    w.add_array("test.array.nested", [[1, 2], [3], [4, 5, 6]])
    w.add_array("test.array.nested.strings", [["x", "y"], ["z"]])
    sources = {}
    for name, qtype, shape in [("f32", T.F32, (3, 8)), ("f16", T.F16, (2, 16)), ("bf16", T.BF16, (2, 16)),
                               ("q8_0", T.Q8_0, (4, 64)), ("q4_0", T.Q4_0, (3, 64))]:
        src = (rng.standard_normal(shape) * 0.7).astype(np.float32)
        sources[name] = src
        w.add_tensor(f"{name}.source", src)
        if qtype == T.F32:
            w.add_tensor(name, src)
        else:
            data = np.ascontiguousarray(gguf.quants.quantize(src, qtype)).view(np.uint8)
            w.add_tensor(name, data, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # What gguf-py's own reader sees, for the Swift reader to match.
    r = gguf.GGUFReader(path)
    fields = []
    for f in r.fields.values():
        if f.name.startswith("GGUF."):
            continue
        types = [V(t).name for t in f.types]
        fields.append({"key": f.name, "types": types, "value": to_json(f.contents()),
                       "flat": flat_text(f.contents())})
    tensors = [{"name": t.name, "type": t.tensor_type.name, "shape": [int(x) for x in t.shape],
                "offset": int(t.data_offset), "n_bytes": int(t.n_bytes)} for t in r.tensors]
    with open(os.path.join(out_dir, "all-metadata.json"), "w") as fp:
        json.dump({"gguf_version": importlib.metadata.version("gguf"),
                   "alignment": r.alignment, "data_offset": int(r.data_offset),
                   "fields": fields, "tensors": tensors}, fp, indent=1, ensure_ascii=False)
        fp.write("\n")


def flat_text(v):
    """Every leaf value as text, nested lists flattened: ints as digits, floats as the shortest
    repr of the float64 value, bools as true/false, strings as they are."""
    if isinstance(v, (list, tuple)):
        return [t for x in v for t in flat_text(x)]
    if isinstance(v, (bool, np.bool_)):
        return ["true" if v else "false"]
    if isinstance(v, (int, np.integer)):
        return [str(int(v))]
    if isinstance(v, (float, np.floating)):
        return [repr(float(v))]
    return [v]


def to_json(v):
    if isinstance(v, (list, tuple)):
        return [to_json(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures"))
    args = ap.parse_args()
    out_dir = os.path.join(args.out, "gguf")
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(SEED)
    write_all_metadata(out_dir, rng)
    write_dequant(out_dir, rng)
    sizes = {t.name: {"id": int(t), "block_size": b, "type_size": s} for t, (b, s) in gguf.GGML_QUANT_SIZES.items()}
    with open(os.path.join(out_dir, "ggml-types.json"), "w") as fp:
        json.dump(sizes, fp, indent=1)
        fp.write("\n")
    for name in sorted(os.listdir(out_dir)):
        print(f"{os.path.join(out_dir, name)}: {os.path.getsize(os.path.join(out_dir, name))} bytes")


if __name__ == "__main__":
    sys.exit(main())
