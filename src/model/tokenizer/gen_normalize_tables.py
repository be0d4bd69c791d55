#!/usr/bin/env python3
"""Generates normalize_tables.c: the Unicode normalization data normalize.c needs (NFC, NFD,
NFKC, NFKD), from the Unicode Character Database files, restricted to the characters assigned
in one Unicode version.

Why the UCD files and not Python's unicodedata: the normalizer's tests compare against Python's
unicodedata.normalize, so the tables come from an independent source. Why a version filter:
unicode_tables.c (\\p{L}, \\p{N}) is Unicode 14.0 (Python 3.11's unicodedata); Debian 12's
unicode-data package ships 15.0. Unicode's stability policy freezes the decomposition, the
canonical combining class and the composition exclusions of a character once it is assigned, so
the 15.0 files restricted to characters of age <= 14.0 give exactly Unicode 14.0's normalization
(the only way a newer version changes an older character's data is a new composition that uses
it as second character, which the filter also removes: both pair members must be old enough).

Run from the repository root (apt-get install unicode-data provides the files):
    python3 src/model/tokenizer/gen_normalize_tables.py [--ucd /usr/share/unicode] [--version 14.0] \\
        > src/model/tokenizer/normalize_tables.c

What is generated (normalize.h describes the C side):
 - the properties of each code point, two-stage table: canonical combining class | the
   quick-check bits of the four forms << 8 (one load after the block index: the quick check
   runs on every character of non-ASCII text);
 - a decomposition index per code point, two-stage table: offset into shoal__norm_decomp[],
   whose entry is a header word (canonical length | compatibility length << 5) followed by
   the full (recursively applied) canonical decomposition, then the full compatibility one when
   it differs; 0 means no decomposition. Hangul syllables are algorithmic and not listed;
 - the primary composites: sorted (first << 21 | second) keys and the composite of each.
The quick-check values are derived from these and cross-checked against
DerivedNormalizationProps.txt (characters of the chosen age only)."""
import argparse
import os
import re
import sys

S_BASE, L_BASE, V_BASE, T_BASE = 0xAC00, 0x1100, 0x1161, 0x11A7
L_COUNT, V_COUNT, T_COUNT = 19, 21, 28
S_COUNT = L_COUNT * V_COUNT * T_COUNT

# quick-check bits of a class (normalize.h: SHOAL__NQC_*)
NFC_NO, NFC_MAYBE, NFKC_NO, NFKC_MAYBE, NFD_NO, NFKD_NO = 1, 2, 4, 8, 16, 32


def ver(s):
    return tuple(int(x) for x in s.split("."))


def read_ranges(path, value_filter=None):
    """Lines 'XXXX(..YYYY) ; value ...' -> list of (lo, hi, value)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = [x.strip() for x in line.split(";")]
            r = fields[0].split("..")
            lo = int(r[0], 16)
            hi = int(r[1], 16) if len(r) > 1 else lo
            if value_filter is None or value_filter(fields[1:]):
                out.append((lo, hi, fields[1:]))
    return out


def two_stage(values, default, shift):
    """values: list indexed by code point (0x110000 entries). Returns (stage1, stage2 blocks)."""
    size = 1 << shift
    blocks, index, stage1 = [], {}, []
    for start in range(0, 0x110000, size):
        blk = tuple(values[start:start + size])
        if blk not in index:
            index[blk] = len(blocks)
            blocks.append(blk)
        stage1.append(index[blk])
    return stage1, blocks


def best_shift(values, elem_size):
    best = None
    for shift in range(4, 10):
        s1, blocks = two_stage(values, 0, shift)
        s1_size = (1 if len(blocks) <= 256 else 2) * len(s1)
        total = s1_size + len(blocks) * (1 << shift) * elem_size
        if best is None or total < best[0]:
            best = (total, shift, s1, blocks)
    return best


def emit_array(lines, ctype, name, values, per_line, fmt):
    lines.append("const %s %s[%d] = {" % (ctype, name, len(values)))
    for i in range(0, len(values), per_line):
        lines.append("    " + " ".join((fmt % v) + "," for v in values[i:i + per_line]))
    lines.append("};")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ucd", default="/usr/share/unicode")
    ap.add_argument("--version", default="14.0")
    a = ap.parse_args()
    want = ver(a.version)
    ucd = a.ucd

    assigned = bytearray(0x110000)
    for lo, hi, v in read_ranges(os.path.join(ucd, "DerivedAge.txt")):
        if ver(v[0]) <= want:
            for cp in range(lo, hi + 1):
                assigned[cp] = 1

    ccc = [0] * 0x110000
    dmap = {}  # cp -> (is_compat, [cps])
    with open(os.path.join(ucd, "UnicodeData.txt"), encoding="utf-8") as f:
        for line in f:
            fld = line.rstrip("\n").split(";")
            cp = int(fld[0], 16)
            if not assigned[cp]:
                continue
            ccc[cp] = int(fld[3])
            d = fld[5]
            if d:
                compat = d.startswith("<")
                if compat:
                    d = d.split(">", 1)[1]
                dmap[cp] = (compat, [int(x, 16) for x in d.split()])
    for cp, (compat, d) in dmap.items():
        assert all(assigned[x] for x in d), "decomposition into a newer character: %X" % cp

    excluded = set()
    for lo, hi, _ in read_ranges(os.path.join(ucd, "CompositionExclusions.txt")):
        for cp in range(lo, hi + 1):
            if assigned[cp]:
                excluded.add(cp)

    def full(cp, compat_ok):
        if S_BASE <= cp < S_BASE + S_COUNT:
            s = cp - S_BASE
            out = [L_BASE + s // (V_COUNT * T_COUNT), V_BASE + (s % (V_COUNT * T_COUNT)) // T_COUNT]
            if s % T_COUNT:
                out.append(T_BASE + s % T_COUNT)
            return out
        m = dmap.get(cp)
        if not m or (m[0] and not compat_ok):
            return [cp]
        out = []
        for x in m[1]:
            out.extend(full(x, compat_ok))
        return out

    # Full_Composition_Exclusion: listed exclusions, singletons, non-starter decompositions
    fce = set(excluded)
    for cp, (compat, d) in dmap.items():
        if compat:
            continue
        if len(d) == 1 or ccc[cp] != 0 or ccc[d[0]] != 0:
            fce.add(cp)
    pairs = {}
    for cp, (compat, d) in dmap.items():
        if not compat and cp not in fce:
            assert len(d) == 2, "%X" % cp
            pairs[(d[0], d[1])] = cp
    seconds = {b for (_, b) in pairs}
    seconds.update(range(V_BASE, V_BASE + V_COUNT))
    seconds.update(range(T_BASE + 1, T_BASE + T_COUNT))

    # the normalizer treats NFC_QC=Maybe as "may be the second of a composition"
    assert not (fce & seconds)

    qc = [0] * 0x110000
    for cp in range(0x110000):
        if not assigned[cp]:
            continue
        nfd = full(cp, False)
        nfkd = full(cp, True)
        q = 0
        if nfd != [cp]:
            q |= NFD_NO
        if nfkd != [cp]:
            q |= NFKD_NO
        if cp in fce:
            q |= NFC_NO
        elif cp in seconds:
            q |= NFC_MAYBE
        if cp in fce or nfkd != nfd:
            q |= NFKC_NO
        elif cp in seconds:
            q |= NFKC_MAYBE
        qc[cp] = q

    # cross-check the derived values against the file (characters of the chosen age only)
    ref = [0] * 0x110000
    bit = {("NFD_QC", "N"): NFD_NO, ("NFKD_QC", "N"): NFKD_NO, ("NFC_QC", "N"): NFC_NO,
           ("NFC_QC", "M"): NFC_MAYBE, ("NFKC_QC", "N"): NFKC_NO, ("NFKC_QC", "M"): NFKC_MAYBE}
    ref_fce = set()
    for lo, hi, v in read_ranges(os.path.join(ucd, "DerivedNormalizationProps.txt")):
        b = bit.get((v[0], v[1] if len(v) > 1 else ""), 0)
        for cp in range(lo, hi + 1):
            if assigned[cp]:
                ref[cp] |= b
                if v[0] == "Full_Composition_Exclusion":
                    ref_fce.add(cp)
    bad = [cp for cp in range(0x110000) if qc[cp] != ref[cp]]
    if bad or ref_fce != fce:
        sys.exit("quick-check values differ from DerivedNormalizationProps.txt at %s; FCE diff %s" %
                 (" ".join("%X" % x for x in bad[:20]), sorted(ref_fce ^ fce)[:20]))

    props = [ccc[cp] | (qc[cp] << 8) for cp in range(0x110000)]
    n_props = len(set(props))

    # decompositions (Hangul syllables excluded: algorithmic)
    decomp = [0]  # offset 0 = none
    entry_at = {}
    dec_of = [0] * 0x110000
    max_c = max_k = 0
    for cp in sorted(dmap):
        nfd = full(cp, False)
        nfkd = full(cp, True)
        c = nfd if nfd != [cp] else []
        k = nfkd if nfkd != c else []
        if not c and not k:
            continue
        max_c, max_k = max(max_c, len(c)), max(max_k, len(k))
        assert len(c) < 32 and len(k) < 32
        ent = tuple([len(c) | (len(k) << 5)] + c + k)
        if ent not in entry_at:
            entry_at[ent] = len(decomp)
            decomp.extend(ent)
        dec_of[cp] = entry_at[ent]
    assert len(decomp) < 65536

    ctotal, cshift, cs1, cblocks = best_shift(props, 2)
    dtotal, dshift, ds1, dblocks = best_shift(dec_of, 2)

    keys = sorted(pairs)
    lines = [
        "/* GENERATED by src/model/tokenizer/gen_normalize_tables.py from the Unicode Character",
        " * Database files in %s (%s), restricted to the" %
        (ucd, open(os.path.join(ucd, "DerivedAge.txt"), encoding="utf-8").readline().strip("# \n")),
        " * characters assigned in Unicode %s. Do not edit: rerun the script. Layout: normalize.h." % a.version,
        " * %d distinct properties, %d decomposition words, %d primary composites; longest full" %
        (n_props, len(decomp), len(keys)),
        " * decomposition %d (canonical), %d (compatibility) code points. */" % (max_c, max_k),
        '#include "model/tokenizer/normalize.h"',
        "",
        "const char shoal__norm_unicode_version[] = \"%s\";" % a.version,
        "",
    ]
    assert len(cblocks) <= 256, "normalize.h declares an 8-bit property stage 1"
    emit_array(lines, "uint8_t", "shoal__norm_prop_stage1", cs1, 24, "%d")
    flat = [v for b in cblocks for v in b]
    emit_array(lines, "uint16_t", "shoal__norm_prop_stage2", flat, 12, "0x%X")
    lines.append("")
    assert len(dblocks) <= 256, "normalize.h declares an 8-bit decomposition stage 1"
    emit_array(lines, "uint8_t", "shoal__norm_decomp_stage1", ds1, 24, "%d")
    flat = [v for b in dblocks for v in b]
    emit_array(lines, "uint16_t", "shoal__norm_decomp_stage2", flat, 16, "%d")
    lines.append("")
    emit_array(lines, "uint32_t", "shoal__norm_decomp", decomp, 10, "0x%X")
    lines.append("")
    emit_array(lines, "uint64_t", "shoal__norm_comp_keys", [(f << 21) | s for f, s in keys], 6, "0x%X")
    emit_array(lines, "uint32_t", "shoal__norm_comp_values", [pairs[k] for k in keys], 10, "0x%X")
    lines.append("const size_t shoal__norm_comp_count = %d;" % len(keys))
    lines.append("")
    hdr = {
        "SHOAL__NORM_PROP_SHIFT": cshift,
        "SHOAL__NORM_DECOMP_SHIFT": dshift,
    }
    lines.append("/* the shifts normalize.h must declare: %s */" %
                 ", ".join("%s %d" % kv for kv in hdr.items()))
    lines.append("#if SHOAL__NORM_PROP_SHIFT != %d || SHOAL__NORM_DECOMP_SHIFT != %d" % (cshift, dshift))
    lines.append("#error normalize.h and normalize_tables.c disagree: update the shifts in normalize.h")
    lines.append("#endif")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stderr.write("property table %d bytes (shift %d), decomposition table %d bytes (shift %d), "
                     "decomposition data %d bytes, %d composites\n" %
                     (ctotal, cshift, dtotal, dshift, 4 * len(decomp), len(keys)))


if __name__ == "__main__":
    main()
