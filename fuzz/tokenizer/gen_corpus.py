#!/usr/bin/env python3
"""Writes the seed corpora of the tokenizer fuzz targets into fuzz/tokenizer/corpus/<target>/.
Every seed is synthetic (small made-up vocabularies), so no test-data file is copied.
Run from the repository root:  python3 fuzz/tokenizer/gen_corpus.py"""
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}

B2U = bytes_to_unicode()
WORDS = ["the", "and", "he", "in", "er", "an", "on", "at", "re", "is", "Hello", "world", "333"]

def bpe_vocab():
    """Byte-level vocabulary: 256 byte characters, then merges building a few words."""
    vocab = {B2U[b]: b for b in range(256)}
    merges = []
    for w in WORDS:
        for word in (w, " " + w):
            m = "".join(B2U[b] for b in word.encode())
            cur = m[0]
            for ch in m[1:]:
                if cur + ch not in vocab:
                    vocab[cur + ch] = len(vocab)
                    merges.append((cur, ch))
                cur += ch
    return vocab, merges

def spm_pieces():
    """SentencePiece-style pieces: unk, bos, eos, 256 byte pieces, then scored pieces."""
    pieces = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)]
    pieces += [("<0x%02X>" % b, 0.0, 6) for b in range(256)]
    seen = set()
    score = -1.0
    for w in WORDS:
        for word in ("\u2581" + w, w):
            for k in range(1, len(word) + 1):
                p = word[:k]
                if p not in seen:
                    seen.add(p)
                    pieces.append((p, score, 1))
                    score -= 1.0
    return pieces

def llama2c_bin(space_char=" "):
    pieces = spm_pieces()
    out = [struct.pack("<i", 16)]
    for i, (p, s, _) in enumerate(pieces):
        t = {1: "\n<s>\n", 2: "\n</s>\n"}.get(i, p.replace("\u2581", space_char)).encode()
        out.append(struct.pack("<fi", s, len(t)) + t)
    return b"".join(out)

def gguf_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b

def gguf(kvs):
    out = [b"GGUF", struct.pack("<IQQ", 3, 0, len(kvs))]
    for key, typ, val in kvs:
        out.append(gguf_str(key) + struct.pack("<I", typ))
        if typ == 8:
            out.append(gguf_str(val))
        elif typ == 4:
            out.append(struct.pack("<I", val))
        elif typ == 7:
            out.append(struct.pack("<B", val))
        elif typ == 9:
            et, items = val
            out.append(struct.pack("<IQ", et, len(items)))
            for it in items:
                out.append(gguf_str(it) if et == 8 else struct.pack("<f" if et == 6 else "<i", it))
    data = b"".join(out)
    return data + b"\0" * (-len(data) % 32)

def main():
    # tokenizer.bin: a good one, one cut short, one with an oversized length
    good = llama2c_bin()
    put("fuzz_tok_llama2c", "small.bin", good)
    put("fuzz_tok_llama2c", "truncated.bin", good[: len(good) // 2])
    put("fuzz_tok_llama2c", "bad_len.bin", struct.pack("<i", 4) + struct.pack("<fi", 0.0, 99) + b"abcd")

    vocab, merges = bpe_vocab()
    specials = [{"id": len(vocab), "content": "<|endoftext|>", "special": True},
                {"id": len(vocab) + 1, "content": "<|im_start|>", "special": True, "lstrip": True},
                {"id": len(vocab) + 2, "content": "[USER]", "special": False, "rstrip": True}]
    bl = {"version": "1.0", "added_tokens": specials, "normalizer": None,
          "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
          "post_processor": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"},
          "model": {"type": "BPE", "vocab": vocab, "merges": [a + " " + b for a, b in merges]}}
    put("fuzz_tok_hfjson", "bytelevel_gpt2.json", json.dumps(bl, ensure_ascii=False))
    l3 = json.loads(json.dumps(bl))
    l3["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
         "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}]}
    l3["model"]["ignore_merges"] = True
    l3["model"]["merges"] = [[a, b] for a, b in merges]
    l3["post_processor"] = {"type": "TemplateProcessing", "single": [
        {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]}
    put("fuzz_tok_hfjson", "bytelevel_llama3.json", json.dumps(l3, ensure_ascii=False))
    q2 = json.loads(json.dumps(l3))  # Qwen2's shape: an NFC normalizer, \p{N} one digit at a time
    q2["normalizer"] = {"type": "NFC"}
    q2["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = \
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
    q2["model"]["ignore_merges"] = False
    put("fuzz_tok_hfjson", "bytelevel_qwen2_nfc.json", json.dumps(q2, ensure_ascii=False))
    seq = json.loads(json.dumps(bl))
    seq["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "NFKD"}, {"type": "NFC"}]}
    put("fuzz_tok_hfjson", "bytelevel_nfkc_seq.json", json.dumps(seq, ensure_ascii=False))
    pieces = spm_pieces()
    spm_vocab = {p: i for i, (p, _, _) in enumerate(pieces)}
    spm_merges = []
    for p, _, t in pieces:
        if t == 1 and len(p) > 1 and p[:-1] in spm_vocab:
            spm_merges.append(p[:-1] + " " + p[-1])
    spm = {"version": "1.0",
           "added_tokens": [{"id": i, "content": pieces[i][0], "special": True} for i in range(3)],
           "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                          {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
           "pre_tokenizer": None,
           "post_processor": {"type": "TemplateProcessing", "single": [
               {"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]},
           "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": True, "fuse_unk": True,
                     "vocab": spm_vocab, "merges": spm_merges}}
    put("fuzz_tok_hfjson", "spm_llama2.json", json.dumps(spm, ensure_ascii=False))
    ms = json.loads(json.dumps(spm))
    ms["normalizer"] = None
    ms["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}
    put("fuzz_tok_hfjson", "spm_metaspace.json", json.dumps(ms, ensure_ascii=False))

    merges_txt = "#version: 0.2\n" + "".join(a + " " + b + "\n" for a, b in merges)
    v2 = dict(vocab)
    v2["<|endoftext|>"] = len(v2)
    put("fuzz_tok_gpt2", "vocab_merges", json.dumps(v2, ensure_ascii=False).encode() + b"\0" + merges_txt.encode())

    put("fuzz_tok_gguf", "llama.gguf", gguf([
        ("tokenizer.ggml.model", 8, "llama"),
        ("tokenizer.ggml.tokens", 9, (8, [p for p, _, _ in pieces])),
        ("tokenizer.ggml.scores", 9, (6, [s for _, s, _ in pieces])),
        ("tokenizer.ggml.token_type", 9, (5, [t for _, _, t in pieces])),
        ("tokenizer.ggml.bos_token_id", 4, 1), ("tokenizer.ggml.eos_token_id", 4, 2),
        ("tokenizer.ggml.add_bos_token", 7, 1)]))
    toks = [None] * len(v2)
    for t, i in v2.items():
        toks[i] = t
    put("fuzz_tok_gguf", "gpt2.gguf", gguf([
        ("tokenizer.ggml.model", 8, "gpt2"), ("tokenizer.ggml.pre", 8, "qwen2"),
        ("tokenizer.ggml.tokens", 9, (8, toks)),
        ("tokenizer.ggml.token_type", 9, (5, [3 if t.startswith("<|") else 1 for t in toks])),
        ("tokenizer.ggml.merges", 9, (8, [a + " " + b for a, b in merges])),
        ("tokenizer.ggml.eos_token_id", 4, len(v2) - 1)]))

    def pb_varint(v):
        out = b""
        v &= (1 << 64) - 1
        while True:
            c = v & 0x7F
            v >>= 7
            if v:
                out += bytes([c | 0x80])
            else:
                return out + bytes([c])
    def pb_field(num, wt, payload):
        key = pb_varint(num << 3 | wt)
        if wt == 2:
            return key + pb_varint(len(payload)) + payload
        return key + payload
    model = b""
    for p, sc, t in pieces:
        sp = pb_field(1, 2, p.encode()) + pb_field(2, 5, struct.pack("<f", sc)) + pb_field(3, 0, pb_varint(t))
        model += pb_field(1, 2, sp)
    trainer = pb_field(3, 0, pb_varint(2)) + pb_field(40, 0, pb_varint(0)) + pb_field(41, 0, pb_varint(1)) + \
        pb_field(42, 0, pb_varint(2)) + pb_field(43, 0, pb_varint(-1))
    normalizer = pb_field(1, 2, b"identity") + pb_field(3, 0, pb_varint(1))
    model += pb_field(2, 2, trainer) + pb_field(3, 2, normalizer)
    put("fuzz_tok_spm", "bpe.model", model)
    put("fuzz_tok_spm", "unigram.model", model.replace(pb_field(3, 0, pb_varint(2)), pb_field(3, 0, pb_varint(1)), 1))

    texts = [
        b"\x00Hello world! It's a test, isn't it? 12345 numbers.",
        b"\x01  leading spaces\n\n\ttabs\r\nand CRLF   trailing   ",
        "\x02<s>chat</s><|endoftext|>[INST] hi <|im_start|>user".encode(),
        "\x03caf\u00e9 na\u00efve \u4f60\u597d\u4e16\u754c \ud55c\uad6d\uc5b4 \u0915\u093f\u0924\u093e\u092c".encode(),
        "\x00\U0001F680 \U0001F636\u200d\U0001F32B\ufe0f \u2705 e\u0301 \u1780\u17b6\u1793\u17cb".encode(),
        b"\x00\xff\xfe\x80 invalid \xc3 utf8 \xe2\x82 \xf0\x9f\x98",
        "\x00\u2581space\u2581symbol \u00a0nbsp \u3000ideo".encode(),
        b"\x00" + b"a" * 400,
        # for the case-aware and DeepSeek-V3 rules: camel case, title case, CJK and kana, ZWJ, digits
        "\x00HelloWorld iPhone HTTPServer McDonald's x=1234567 \u65e5\u672c\u8a9e\u306e a\u200d\u200db "
        ",\u4e16\u754c! \t\n 3.14 \u01c5ungla e\u0301t\u00c9 a/b/\n".encode(),
    ]
    for i, t in enumerate(texts):
        put("fuzz_tok_encode", "text%02d" % i, t)

    norm_texts = [
        "cafe\u0301 A\u030a \u212b q\u0307\u0323 a\u0302\u0323 \u1e9b\u0323".encode(),
        "\u1112\u1161\u11ab\u1100\u116e\u11a8 \uac00\u11a8 \u1100\u1176 \ud55c\uad6d\uc5b4".encode(),
        "Tie\u0302\u0301ng Vie\u0323\u0302t \u09c7\u09be \u0958 \u0f73 \u0344 \U0001d15e".encode(),
        "\ufb01 \ufdfa \u00bd \u3000\u00a0 \uff21 \u2460 \u1f80\u0345 \u03d3".encode(),
        b"e\xff\xcc\x81 \xc3\xa9\xcc \xcc\x81 \xed\xa0\x80\xcc\x81 \xe2\x82 \x80\xcc\x81\xcc\xa3",
        b"a" + b"\xcc\x81\xcc\x96" * 200,
        "plain ASCII text, then na\u00efve caf\u00e9 \u4f60\u597d".encode(),
    ]
    for i, t in enumerate(norm_texts):
        put("fuzz_tok_normalize", "text%02d" % i, t)

if __name__ == "__main__":
    main()
