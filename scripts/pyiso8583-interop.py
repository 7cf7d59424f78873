#!/usr/bin/env python3
"""Interoperability with pyiso8583, an independent ISO 8583 implementation.

CloudTap never runs Python; this is tooling. The pyiso8583 specs are generated from CloudTap's
own dialect files (Sources/ISO8583/Dialects/*.json), so both sides read the same description.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install pyiso8583
    swift build
    /tmp/venv/bin/python scripts/pyiso8583-interop.py samples   # (re)write Tests/ISO8583Tests/Samples
    /tmp/venv/bin/python scripts/pyiso8583-interop.py check     # both directions through the CLI
    /tmp/venv/bin/python scripts/pyiso8583-interop.py bench     # pyiso8583 pack+unpack figures

`check` packs each sample with pyiso8583 and decodes it with `cloudtap iso8583 decode --json
--reveal`, then encodes that JSON back with `cloudtap iso8583 encode` and decodes the bytes
with pyiso8583; every field must come back equal, and the bytes identical.
"""
import binascii, copy, json, os, subprocess, sys, time
import iso8583

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DIALECTS = os.path.join(ROOT, "Sources", "ISO8583", "Dialects")
SAMPLES = os.path.join(ROOT, "Tests", "ISO8583Tests", "Samples")
CLI = os.environ.get("CLOUDTAP", os.path.join(ROOT, ".build", "debug", "cloudtap"))


def py_spec(dialect):
    """A pyiso8583 spec equivalent to a CloudTap dialect file."""
    d = json.load(open(os.path.join(DIALECTS, dialect + ".json")))
    spec = {}
    header_len = sum(f["length"] for f in d.get("header", {}).get("fields", []))
    spec["h"] = {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": header_len, "desc": "Header"}
    if d["mtiEncoding"] == "bcd":
        spec["t"] = {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": 2, "desc": "MTI"}
    else:
        spec["t"] = {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 4, "desc": "MTI"}
    bitmap_enc = "b" if d["bitmapEncoding"] == "binary" else "ascii"
    bitmap_len = 8 if bitmap_enc == "b" else 16
    spec["p"] = {"data_enc": bitmap_enc, "len_enc": "ascii", "len_type": 0, "max_len": bitmap_len, "desc": "Bitmap"}
    spec["1"] = dict(spec["p"], desc="Secondary bitmap")
    for n in range(2, 129):
        f = d["fields"].get(str(n))
        if f is None:
            spec[str(n)] = {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 0, "desc": "unused"}
            continue
        digits = {"fixed": 0, "L": 1, "LL": 2, "LLL": 3, "LLLL": 4}[f["prefix"]]
        penc = {"ascii": "ascii", "bcd": "bcd", "binary": "b", "ebcdic": "cp500"}[f["prefixEncoding"]]
        len_type = digits if penc in ("ascii", "cp500") else (digits + 1) // 2
        s = {"len_enc": penc, "len_type": len_type, "max_len": f["length"], "desc": f["description"]}
        if f["encoding"] == "bcd":
            s.update(data_enc="b", len_count="nibbles")
            if f.get("align", "right") == "left":
                s["right_pad"] = f.get("pad", "0")
            else:
                s["left_pad"] = f.get("pad", "0")
        elif f["encoding"] == "binary":
            s.update(data_enc="b", len_count="bytes")
        else:
            s.update(data_enc="ascii" if f["encoding"] == "ascii" else "cp500")
        spec[str(n)] = s
    return d, spec


def to_py(dialect, fields):
    """CloudTap values → pyiso8583 values (BCD digits with '=' as 'D')."""
    d, _ = py_spec(dialect)
    out = {}
    for k, v in fields.items():
        f = d["fields"][k]
        out[k] = v.replace("=", "D") if f["encoding"] == "bcd" else v
    return out


def header_hex(dialect, total):
    if dialect == "network":
        ids = "00010000   "
        h = bytes([46, 2]) + b"%04d" % total + ids.encode() + ids.encode() + bytes(3) + bytes([0]) + b"00000000" + bytes([0]) + b"00000"
        return h.hex().upper()
    if dialect == "terminal":
        return "6000030000"
    return ""


def py_pack(dialect, mti, fields):
    d, spec = py_spec(dialect)
    doc = {"t": mti, "h": header_hex(dialect, 0)}
    doc.update(to_py(dialect, fields))
    raw, _ = iso8583.encode(copy.deepcopy(doc), spec)
    if dialect == "network":  # fill in the total length and pack again
        doc["h"] = header_hex(dialect, len(raw))
        raw, _ = iso8583.encode(copy.deepcopy(doc), spec)
    return bytes(raw)


def py_unpack(dialect, raw):
    d, spec = py_spec(dialect)
    doc, _ = iso8583.decode(bytearray(raw), spec)
    out = {}
    for k, v in doc.items():
        if k in ("h", "t", "p", "1"):
            continue
        f = d["fields"][k]
        out[k] = v.replace("D", "=") if f["encoding"] == "bcd" and f["type"] == "z" else v
    return doc["t"], out


def tlv(items):
    return "".join(t + "%02X" % (len(v) // 2) + v for t, v in items)


# A contactless 0200's DE55, 120 bytes: the DESIGN §3 tag list with the cloud IAD.
ICC = tlv([("9F26", "1A2B3C4D5E6F7081"), ("9F27", "80"), ("9F10", "0D014103A000000100EA60000701"), ("9F37", "12345678"),
           ("9F36", "002A"), ("95", "0000000000"), ("9A", "261126"), ("9C", "00"), ("9F02", "000000003850"), ("5F2A", "0156"),
           ("82", "7C00"), ("9F1A", "0156"), ("9F03", "000000000000"), ("9F33", "E0E1C8"), ("9F34", "020000"),
           ("84", "A000000333010101"), ("9F41", "00000123")])
ARPC_DATA = tlv([("91", "11223344556677883030")])


def samples():
    pan, track = "6234567890123456780", "6234567890123456780=29122010000000000"
    common = {"2": pan, "3": "000000", "4": "000000003850", "11": "000123", "12": "153045", "13": "1126", "14": "2912",
              "22": "072", "23": "001", "25": "00", "35": track, "41": "TERM0001", "42": "MERCHANT0000001", "49": "156", "55": ICC}
    out = []
    for dialect in ("iso87ascii", "network", "terminal"):
        req = dict(common)
        if dialect != "terminal":
            req.update({"7": "1126153045", "32": "00010000", "33": "00010000", "37": "000000000123", "43": "CLOUDTAP TEST MERCHANT   SHANGHAI     CN"})
        else:
            req.update({"60": "22000001000500", "32": "00010000"})
        pin = dict(req, **{"22": "071", "26": "12", "52": "3A5F1C2D4E6B7A89", "53": "2600000000000000"})
        resp = {k: req[k] for k in ("2", "3", "4", "11", "12", "13", "41", "42", "49") if k in req}
        resp.update({"37": "000000000123", "38": "A1B2C3", "39": "00", "55": ARPC_DATA})
        rev = {k: req[k] for k in ("2", "3", "4", "11", "22", "41", "42", "49") if k in req}
        rev["39"] = "98"
        net = {"11": "000001", "41": "TERM0001", "42": "MERCHANT0000001"}
        if dialect == "terminal":
            net["60"] = "00000001001"
        else:
            net.update({"7": "1126153045", "33": "00010000", "70": "001"})
            rev.update({"7": "1126153100", "90": "0200" + "000123" + "1126153045" + "00000010000" + "00000010000"})
        for name, mti, fields in [("0200-contactless", "0200", req), ("0200-pin", "0200", pin), ("0210-approved", "0210", resp),
                                  ("0400-reversal", "0400", rev), ("0800-sign-on", "0800", net)]:
            raw = py_pack(dialect, mti, fields)
            base = os.path.join(SAMPLES, f"{dialect}-{name}")
            open(base + ".hex", "w").write(raw.hex().upper() + "\n")
            json.dump({"mti": mti, "fields": fields}, open(base + ".json", "w"), indent=1, sort_keys=True)
            out.append(base)
    print("\n".join(os.path.relpath(b, ROOT) + ".hex" for b in out))


def cli(*args, stdin=None):
    r = subprocess.run([CLI, *args], input=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"cloudtap {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def check():
    failures = 0
    for name in sorted(os.listdir(SAMPLES)):
        if not name.endswith(".json"):
            continue
        dialect = name.split("-")[0]
        want = json.load(open(os.path.join(SAMPLES, name)))
        raw = py_pack(dialect, want["mti"], want["fields"])
        # pyiso8583 → CloudTap
        got = json.loads(cli("iso8583", "decode", raw.hex(), "--dialect", dialect, "--json", "--reveal"))
        ok1 = got["mti"] == want["mti"] and got["fields"] == want["fields"]
        # CloudTap → pyiso8583
        again = bytes.fromhex(cli("iso8583", "encode", "-", "--dialect", dialect, stdin=json.dumps(got)).strip())
        mti, fields = py_unpack(dialect, again)
        ok2 = again == raw and mti == want["mti"] and fields == want["fields"]
        failures += not (ok1 and ok2)
        print(f"{'ok  ' if ok1 and ok2 else 'FAIL'} {name[:-5]:32} pyiso8583→cloudtap {'ok' if ok1 else 'DIFF'}, cloudtap→pyiso8583 {'ok' if ok2 else 'DIFF'}")
    print(f"{failures} failed")
    sys.exit(1 if failures else 0)


def bench():
    for dialect in ("iso87ascii", "network", "terminal"):
        want = json.load(open(os.path.join(SAMPLES, f"{dialect}-0200-contactless.json")))
        _, spec = py_spec(dialect)
        doc = {"t": want["mti"], "h": header_hex(dialect, 0)}
        doc.update(to_py(dialect, want["fields"]))
        raw, _ = iso8583.encode(copy.deepcopy(doc), spec)
        n = 20000
        t0 = time.perf_counter()
        for _ in range(n):
            iso8583.encode(dict(doc), spec)
        t1 = time.perf_counter()
        for _ in range(n):
            iso8583.decode(bytearray(raw), spec)
        t2 = time.perf_counter()
        print(f"pyiso8583 {iso8583.__version__} {dialect:10} 0200 with {len(bytes.fromhex(ICC))}-byte DE55: "
              f"pack {(t1 - t0) / n * 1e9:8.0f} ns, unpack {(t2 - t1) / n * 1e9:8.0f} ns, total {(t2 - t0) / n * 1e9:8.0f} ns")


if __name__ == "__main__":
    {"samples": samples, "check": check, "bench": bench}[sys.argv[1] if len(sys.argv) > 1 else "check"]()
