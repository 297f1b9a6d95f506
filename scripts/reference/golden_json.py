"""Shared helpers for the golden-file generators: rounding and a compact, diff-friendly JSON layout
(objects indented, lists of numbers/strings on one line)."""
import json
import math
import os


def round_sig(x, digits):
    """x rounded to `digits` significant digits, as a float whose shortest repr is short."""
    x = float(x)
    if x == 0.0 or not math.isfinite(x):
        return x
    return float(f"{x:.{digits - 1}e}")


def _encode(value, indent):
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f'{pad} {json.dumps(k)}: {_encode(v, indent + 1)}' for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, (list, tuple)):
        if all(not isinstance(v, (dict, list, tuple)) for v in value):
            return "[" + ",".join(json.dumps(v) for v in value) + "]"
        items = [f"{pad} {_encode(v, indent + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value, allow_nan=False)


def dump_golden(obj, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(_encode(obj, 0) + "\n")
    json.load(open(tmp, encoding="utf-8"))  # must parse back
    os.replace(tmp, path)
