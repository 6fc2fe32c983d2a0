#!/usr/bin/python3
"""tests/read_safetensors.py: reads a safetensors file written by aft with PyTorch alone.

It follows the format description (https://github.com/huggingface/safetensors), not aft's
code: 8 bytes little-endian header length N, N bytes of UTF-8 JSON, then the raw
little-endian tensor bytes, each tensor at [begin, end) of that data, with no gaps, overlaps
or trailing bytes. The tensors are made with torch.frombuffer (the safetensors package is not
in Debian). It prints one JSON document on stdout:

  {"metadata": {...}, "tensors": [{"name": ..., "dtype": "F32", "shape": [...],
   "bits": [...]}, ...]}

where "bits" are the elements in row-major order as integers: the IEEE bit patterns of
F32/F64 (read through an int32/int64 view, so the comparison is exact, NaN included), the
values of I64, and 0/1 for BOOL. tests/test_checkpoint.cpp compares that with what aft holds.

Usage: /usr/bin/python3 tests/read_safetensors.py FILE
Exit status: 0 read, 1 the file breaks the format, 77 PyTorch is not installed.
"""
import json
import struct
import sys

try:
    import torch
except ImportError as e:  # the C++ test reports this as skipped
    print(f"skipped: PyTorch is not available to {sys.executable}: {e}", file=sys.stderr)
    sys.exit(77)

DTYPES = {  # safetensors code -> (torch dtype, bytes per element, integer view for "bits")
    "F32": (torch.float32, 4, torch.int32),
    "F64": (torch.float64, 8, torch.int64),
    "I64": (torch.int64, 8, None),
    "BOOL": (torch.bool, 1, None),
}


def fail(msg):
    print(f"read_safetensors.py: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 2:
        fail("usage: read_safetensors.py FILE")
    with open(sys.argv[1], "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        fail("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        fail(f"header length {n} past the end of the file")
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    data = blob[8 + n :]
    metadata = header.pop("__metadata__", {}) or {}
    if not all(isinstance(v, str) for v in metadata.values()):
        fail("metadata values must be strings")

    # The spans must tile the data exactly.
    spans = sorted((info["data_offsets"][0], info["data_offsets"][1], name) for name, info in header.items())
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            fail(f"tensor {name!r} begins at {begin}, expected {pos}")
        pos = end
    if pos != len(data):
        fail(f"tensors end at {pos} but the data is {len(data)} bytes")

    tensors = []
    for name, info in header.items():  # json keeps the file's key order
        dtype, size, int_view = DTYPES[info["dtype"]]
        shape = info["shape"]
        begin, end = info["data_offsets"]
        numel = 1
        for d in shape:
            numel *= d
        if end - begin != numel * size:
            fail(f"tensor {name!r}: {end - begin} bytes for shape {shape} of {info['dtype']}")
        if numel == 0:
            t = torch.empty(shape, dtype=dtype)
        else:
            t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype).reshape(shape)
        flat = t.reshape(-1)
        bits = flat.view(int_view) if int_view is not None else flat.to(torch.int64)
        tensors.append({"name": name, "dtype": info["dtype"], "shape": list(t.shape), "bits": bits.tolist()})

    json.dump({"metadata": metadata, "tensors": tensors}, sys.stdout)


if __name__ == "__main__":
    main()
