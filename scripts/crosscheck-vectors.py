#!/usr/bin/env python3
"""Regenerates the cross-check vectors in Tests/PaymentCryptoTests/Vectors/crosscheck-*.json.

CloudTap's tests never run Python; this script is tooling. It computes expected values with
independent implementations (pycryptodome for DES/3DES/AES/CMAC, pyemv for EMV, psec for
PIN, CVV and TR-31) so the Swift implementation is checked against code it shares nothing with.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install pyemv psec pycryptodome
    /tmp/venv/bin/python scripts/crosscheck-vectors.py
"""
import json, os, random
from Crypto.Cipher import DES, DES3, AES
from Crypto.Hash import CMAC
import pyemv, psec
from pyemv import kd, ac, cvv as emvcvv
from psec import pinblock, pin as psecpin, cvv as pseccvv, tr31, mac as psecmac

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "PaymentCryptoTests", "Vectors")
rng = random.Random(20261126)
def rb(n): return bytes(rng.getrandbits(8) for _ in range(n))
def h(b): return b.hex().upper()

def des_vectors():
    out = []
    for _ in range(40):
        key, block = rb(8), rb(8)
        out.append({"key": h(key), "plaintext": h(block), "ciphertext": h(DES.new(key, DES.MODE_ECB).encrypt(block))})
    for n in (16, 24):
        for _ in range(30):
            while True:
                key = rb(n)
                try:
                    c = DES3.new(key, DES3.MODE_ECB); break
                except ValueError:
                    continue
            block = rb(8)
            out.append({"key": h(key), "plaintext": h(block), "ciphertext": h(c.encrypt(block))})
    return {"source": "pycryptodome %s DES/DES3 ECB, random keys and blocks (seed 20261126)" % __import__("Crypto").__version__, "vectors": out}

def mac_vectors():
    out = []
    for n in (0, 1, 7, 8, 9, 16, 33, 64):
        key, data = rb(16), rb(n)
        for pad in (1, 2):
            out.append({"algorithm": 3, "padding": pad, "key": h(key), "data": h(data),
                        "mac": h(psecmac.generate_retail_mac(key[:8], key[8:], data, pad, 8))})
            out.append({"algorithm": 1, "padding": pad, "key": h(key), "data": h(data),
                        "mac": h(psecmac.generate_cbc_mac(key, data, pad, 8))})
    cmacs = []
    for n in (0, 5, 16, 31, 64):
        key, data = rb(16), rb(n)
        c = CMAC.new(key, ciphermod=AES); c.update(data)
        cmacs.append({"key": h(key), "data": h(data), "mac": c.hexdigest().upper()})
    return {"source": "psec %s generate_retail_mac / generate_cbc_mac (3DES); pycryptodome AES-CMAC" % psec.__version__, "iso9797": out, "aesCMAC": cmacs}

def emv_vectors():
    imk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    keys = []
    for pan, psn in [("5413330089020011", "01"), ("6210220110002707355", "01"), ("4761739001010010", "00"), ("12345678901234567", "01"), ("6223456789012345678", "02")]:
        keys.append({"imk": h(imk), "pan": pan, "psn": psn, "optionA": h(kd.derive_icc_mk_a(imk, pan, psn)), "optionB": h(kd.derive_icc_mk_b(imk, pan, psn))})
    profiles = []
    from pyemv import cvn
    data = dict(tag_9f02=bytes.fromhex("000000012345"), tag_9f03=bytes.fromhex("000000000000"), tag_9f1a=bytes.fromhex("0156"),
                tag_95=bytes.fromhex("0000000000"), tag_5f2a=bytes.fromhex("0156"), tag_9a=bytes.fromhex("261126"), tag_9c=bytes.fromhex("00"),
                tag_9f37=bytes.fromhex("1A2B3C4D"), tag_82=bytes.fromhex("7C00"), tag_9f36=bytes.fromhex("002A"))
    elements = "".join(h(data[k]) for k in ["tag_9f02","tag_9f03","tag_9f1a","tag_95","tag_5f2a","tag_9a","tag_9c","tag_9f37","tag_82","tag_9f36"])
    pan, psn = "4761739001010010", "01"
    iad10 = bytes.fromhex("06010A03A00000")
    c10 = cvn.VisaCVN10(iss_mk_ac=imk, iss_mk_smi=imk, iss_mk_smc=imk, pan=pan, psn=psn)
    arqc = c10.generate_ac(**data, cvr=iad10[3:7])
    profiles.append({"profile": "10", "imk": h(imk), "pan": pan, "psn": psn, "elements": elements, "iad": h(iad10), "arqc": h(arqc),
                     "arc": "3030", "arpc": h(c10.generate_arpc(arqc, b"00"))})
    iad18 = bytes.fromhex("06011203A0B800")
    c18 = cvn.VisaCVN18(iss_mk_ac=imk, iss_mk_smi=imk, iss_mk_smc=imk, pan=pan, psn=psn)
    arqc = c18.generate_ac(**data, tag_9f10=iad18)
    profiles.append({"profile": "18", "imk": h(imk), "pan": pan, "psn": psn, "elements": elements, "iad": h(iad18), "arqc": h(arqc),
                     "csu": "00000000", "arpc": h(c18.generate_arpc(arqc, data["tag_9f36"], b"\x00\x00\x00\x00"))})
    mpan = "5413330089020011"
    iad16 = bytes.fromhex("0110A00003220000000000000000000000FF")
    c16 = cvn.MasterCardCVN16(iss_mk_ac=imk, iss_mk_smi=imk, iss_mk_smc=imk, pan=mpan, psn=psn)
    arqc = c16.generate_ac(**data, cvr=iad16[2:8])
    profiles.append({"profile": "16", "imk": h(imk), "pan": mpan, "psn": psn, "elements": elements, "iad": h(iad16), "arqc": h(arqc),
                     "arc": "3030", "arpc": h(c16.generate_arpc(arqc, b"00"))})
    # UnionPay CVN 01 (3DES) from pyemv's option A and MAC, with the PBOC session key.
    upan = "6210220110002707354"
    iad01 = bytes.fromhex("07010103A0000001")
    mk = kd.derive_icc_mk_a(imk, upan, psn)
    atc = data["tag_9f36"]
    sk = DES3.new(mk, DES3.MODE_ECB).encrypt(bytes(6) + atc + bytes(6) + bytes(b ^ 0xFF for b in atc))
    arqc = __import__("pyemv.mac", fromlist=["mac"]).mac_iso9797_3(sk[:8], sk[8:], bytes.fromhex(elements) + iad01[3:7], 2)
    arpc = DES3.new(sk, DES3.MODE_ECB).encrypt(bytes(a ^ b for a, b in zip(arqc, b"00" + bytes(6))))
    profiles.append({"profile": "01", "imk": h(imk), "pan": upan, "psn": psn, "elements": elements, "iad": h(iad01), "arqc": h(arqc), "arc": "3030", "arpc": h(arpc)})
    # UnionPay SM4 (algorithm 04) with the SM4 of the cryptography package (OpenSSL).
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    def sm4(key, block):
        e = Cipher(algorithms.SM4(key), modes.ECB()).encryptor(); return e.update(block) + e.finalize()
    iad04 = bytes.fromhex("07010103A0000004")
    y = bytes.fromhex((upan + psn)[-16:])
    mk4 = sm4(imk, y + bytes(b ^ 0xFF for b in y))
    sk4 = sm4(mk4, bytes(6) + atc + bytes(6) + bytes(b ^ 0xFF for b in atc))
    msg = bytes.fromhex(elements) + iad04[3:7] + b"\x80"
    msg += bytes((16 - len(msg) % 16) % 16)
    chain = bytes(16)
    for i in range(0, len(msg), 16):
        chain = sm4(sk4, bytes(a ^ b for a, b in zip(chain, msg[i:i + 16])))
    arqc4 = chain[:8]
    arpc4 = sm4(sk4, bytes(a ^ b for a, b in zip(arqc4 + bytes(8), b"00" + bytes(14))))[:8]
    profiles.append({"profile": "sm4", "imk": h(imk), "pan": upan, "psn": psn, "elements": elements, "iad": h(iad04), "arqc": h(arqc4), "arc": "3030", "arpc": h(arpc4)})
    return {"source": "pyemv %s kd.derive_icc_mk_a/b, cvn.VisaCVN10/VisaCVN18/MasterCardCVN16, mac_iso9797_3 with the PBOC session key (CVN 01); SM4 from the cryptography package (OpenSSL) for the SM4 profile" % pyemv.__version__, "cardKeys": keys, "profiles": profiles}

def pin_vectors():
    blocks = []
    for _ in range(20):
        p = "".join(str(rng.randint(0, 9)) for _ in range(rng.randint(4, 12)))
        pan = rng.choice(["5544332211009966", "4012345678909", "6210220110002707355", "4761739001010010"])
        blocks.append({"format": 0, "pin": p, "pan": pan, "clear": h(pinblock.encode_pinblock_iso_0(p, pan))})
        blocks.append({"format": 3, "pin": p, "pan": pan, "clear": h(pinblock.encode_pinblock_iso_3(p, pan))})
        key = rb(16)
        blocks.append({"format": 4, "pin": p, "pan": pan, "key": h(key), "enciphered": h(pinblock.encipher_pinblock_iso_4(key, p, pan))})
    pvk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    pvvs, offsets = [], []
    for _ in range(10):
        pan = rng.choice(["4761739001010010", "1122334455667788", "6210220110002707355"])
        p = "".join(str(rng.randint(0, 9)) for _ in range(4))
        ki = str(rng.randint(0, 9))
        pvvs.append({"pvk": h(pvk), "pan": pan, "pvki": int(ki), "pin": p, "pvv": psecpin.generate_visa_pvv(pvk, ki, p, pan)})
        table = "0123456789012345"
        offsets.append({"pvk": h(pvk), "pan": pan, "validationData": (pan[:16]).ljust(16, "F"), "decimalizationTable": table, "pin": p,
                        "offset": psecpin.generate_ibm3624_offset(pvk, table, p, pan, 0, min(16, len(pan)), "F")})
    cvvs = []
    cvk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    for pan, exp, sc in [("4123456789012345", "8701", "101"), ("4999988887777000", "9105", "111"), ("5413330089020011", "2912", "201"), ("4761739001010010", "3012", "000")]:
        cvvs.append({"cvk": h(cvk), "pan": pan, "expiry": exp, "serviceCode": sc, "cvv": pseccvv.generate_cvv(cvk, pan, exp, sc)})
    cvc3 = []
    iss = bytes.fromhex("01234567899876543210012345678998")
    for pan, track, atc, un in [("5123456789012345", "5123456789012345D35121010000000000000F", "005E", "00000899"),
                                 ("5413330089020011", "5413330089020011D29122010000000000000F", "0001", "12345678")]:
        icc = kd.derive_icc_mk_a(iss, pan, "00")
        cvc3.append({"cardKey": h(icc), "track": track, "atc": atc, "un": un,
                     "cvc3": emvcvv.generate_cvc3(icc, bytes.fromhex(track), bytes.fromhex(atc), bytes.fromhex(un))})
    return {"source": "psec %s pinblock/pin/cvv; pyemv %s cvv.generate_cvc3" % (psec.__version__, pyemv.__version__),
            "pinBlocks": blocks, "pvv": pvvs, "ibm3624": offsets, "cvv": cvvs, "cvc3": cvc3}

def tr31_vectors():
    out = []
    for kbpk_len in (16, 24, 32):
        kbpk = rb(kbpk_len)
        for usage, algo, mode, key in [("P0", "T", "B", rb(16)), ("E0", "T", "X", rb(16)), ("D0", "A", "B", rb(32)), ("K0", "A", "B", rb(16))]:
            kb = tr31.KeyBlock(kbpk, tr31.Header("D", usage, algo, mode, "00", "E"))
            out.append({"kbpk": h(kbpk), "keyBlock": kb.wrap(key), "key": h(key)})
    return {"source": "psec %s tr31.KeyBlock version D" % psec.__version__, "vectors": out}

for name, fn in [("crosscheck-des.json", des_vectors), ("crosscheck-mac.json", mac_vectors), ("crosscheck-emv.json", emv_vectors),
                 ("crosscheck-pin-cvv.json", pin_vectors), ("crosscheck-tr31.json", tr31_vectors)]:
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(fn(), f, indent=1)
        f.write("\n")
    print("wrote", name)
