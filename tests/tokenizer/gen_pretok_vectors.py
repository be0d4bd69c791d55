#!/usr/bin/env python3
"""Generates pretok_vectors.txt: how the pre-tokenizer regexes split random text, computed with
the Python `regex` module (a real backtracking regex engine with \\p{..} classes), as a
reference for the hand-written matchers of src/model/tokenizer/pretok.c.

Run from the repository root (Python 3.11, whose unicodedata is Unicode 14.0, and `regex`):
    python3 tests/tokenizer/gen_pretok_vectors.py > tests/tokenizer/pretok_vectors.txt

Rules, as Hugging Face tokenizers runs them (Split, behavior Isolated: every match is a word,
and so is any text between matches):
  gpt2       's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
  llama3     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|
             \\s*[\\r\\n]+|\\s+(?!\\S)|\\s+
  qwen2      llama3 with \\p{N} instead of \\p{N}{1,3}
  starcoder  \\p{N} first, then the gpt2 regex over each piece between (llama.cpp's regex list;
             Hugging Face: Digits(individual_digits) then ByteLevel)
  tekken     [^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|
             [^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}|
              ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+     (Mistral's tokenizer.json)
  gpt4o      tekken with (?i:'s|'t|'re|'ve|'m|'ll|'d)? after both letter alternatives and
             \\p{N}{1,3} (GPT-4o / Llama-4 tokenizer.json)
  deepseek3  \\p{N}{1,3}, then [\\u4e00-\\u9fa5\\u3040-\\u309f\\u30a0-\\u30ff]+, then
             [!"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|
              ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+   (DeepSeek-V3's Splits, llama.cpp's list)
  deepseek-llm  [\\r\\n], then \\s?[LETTERS]+, then \\s?[!-/:-~\\uff01-\\uff0f\\uff1a-\\uff5e\\u2018-\\u201f\\u3000-\\u3002]+,
             then \\s+$, then [\\u4e00-\\u9fa5\\u0800-\\u4e00\\uac00-\\ud7ff]+, then \\p{N}+ (llama.cpp's list);
             LETTERS is DeepSeek LLM's explicit list of cased letters, the same ranges as pretok.c's
             llm_letters (so this checks the splitting, not that transcription)
  deepseek-coder  [\\r\\n], then \\s?\\p{L}+, then \\s?\\p{P}+, then [\\u4e00-\\u9fa5\\u0800-\\u4e00\\uac00-\\ud7ff]+,
             then \\p{N}, each over the pieces the previous ones left (llama.cpp's list)
Text is drawn from characters whose class (letter, number, White_Space, other) is the same in
Unicode 14.0 (the tokenizer's tables, via unicodedata) and in the `regex` module's newer
Unicode, so the two versions cannot disagree. Characters whose case folds onto ASCII
('\u017f' LONG S, U+212A KELVIN) are left out: the tokenizer folds only ASCII case in
(?i:'s...) (docs/tokenizer.md, "Not implemented").

Format: "rule;text;words" with text as space-separated hexadecimal code points and words as
the lengths of the words in code points, in order."""
import random
import sys
import unicodedata

import regex

GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
          r"\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}")
TEKKEN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"
          r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}|"
          r" ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
GPT4O = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
         r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
         r"\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")

WHITE_SPACE = {0x9, 0xA, 0xB, 0xC, 0xD, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000} | \
    set(range(0x2000, 0x200B))


def isolate(pattern, pieces):
    """Split each piece: every match a word, and every gap between matches."""
    out = []
    for p in pieces:
        at = 0
        for m in regex.finditer(pattern, p):
            if m.start() > at:
                out.append(p[at:m.start()])
            if m.end() > m.start():
                out.append(m.group())
            at = m.end()
        if at < len(p):
            out.append(p[at:])
    return out


DS3_MAIN = (r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|"
            r" ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
DS3_CJK = "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+"

LLM_LETTERS = [
    (0x41, 0x5A), (0x61, 0x7A), (0xB5, 0xB5), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x1BA), (0x1BC, 0x1BF),
    (0x1C4, 0x293), (0x295, 0x2AF), (0x370, 0x373), (0x376, 0x377), (0x37B, 0x37D), (0x37F, 0x37F),
    (0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1), (0x3A3, 0x3F5), (0x3F7, 0x481),
    (0x48A, 0x52F), (0x531, 0x556), (0x10A0, 0x10C5), (0x13A0, 0x13F5), (0x13F8, 0x13FD), (0x1C90, 0x1CBA),
    (0x1CBD, 0x1CBF), (0x1D00, 0x1D2B), (0x1D6B, 0x1D77), (0x1D79, 0x1D9A), (0x1E00, 0x1F15), (0x1F18, 0x1F1D),
    (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57), (0x1F59, 0x1F59), (0x1F5B, 0x1F5B), (0x1F5D, 0x1F5D),
    (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE), (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC),
    (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC), (0x2102, 0x2102),
    (0x2107, 0x2107), (0x210A, 0x2113), (0x2115, 0x2115), (0x2119, 0x211D), (0x2124, 0x2124), (0x2126, 0x2126),
    (0x2128, 0x2128), (0x212A, 0x212D), (0x212F, 0x2134), (0x2139, 0x2139), (0x213C, 0x213F), (0x2145, 0x2149),
    (0x214E, 0x214E), (0x2183, 0x2184), (0x2C00, 0x2C7B), (0x2C7E, 0x2CE4), (0x2CEB, 0x2CEE), (0x2CF2, 0x2CF3),
    (0xA640, 0xA66D), (0xA680, 0xA69B), (0xA722, 0xA76F), (0xA771, 0xA787), (0xA78B, 0xA78E), (0xAB70, 0xABBF),
    (0xFB00, 0xFB06), (0xFB13, 0xFB17), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A), (0x10400, 0x1044F),
    (0x104B0, 0x104D3), (0x104D8, 0x104FB), (0x10C80, 0x10CB2), (0x10CC0, 0x10CF2), (0x118A0, 0x118DF),
    (0x1E900, 0x1E943)]
def _esc(cp):
    return "\\u%04X" % cp if cp < 0x10000 else "\\U%08X" % cp


LLM_CLASS = "".join(_esc(lo) + "-" + _esc(hi) for lo, hi in LLM_LETTERS)
CJK_CODER = "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+"

RULES = {
    "gpt2": lambda s: isolate(GPT2, [s]),
    "llama3": lambda s: isolate(LLAMA3, [s]),
    "qwen2": lambda s: isolate(QWEN2, [s]),
    "starcoder": lambda s: isolate(GPT2, isolate(r"\p{N}", [s])),
    "tekken": lambda s: isolate(TEKKEN, [s]),
    "gpt4o": lambda s: isolate(GPT4O, [s]),
    "deepseek3": lambda s: isolate(DS3_MAIN, isolate(DS3_CJK, isolate(r"\p{N}{1,3}", [s]))),
    "deepseek-llm": lambda s: isolate(r"\p{N}+", isolate(CJK_CODER, isolate(r"\s+$", isolate(
        "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+",
        isolate(r"\s?[" + LLM_CLASS + r"]+", isolate(r"[\r\n]", [s])))))),
    "deepseek-coder": lambda s: isolate(r"\p{N}", isolate("[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+", isolate(
        r"\s?\p{P}+", isolate(r"\s?\p{L}+", isolate(r"[\r\n]", [s]))))),
}


def cls14(c):
    cat = unicodedata.category(c)
    if ord(c) in WHITE_SPACE:
        return "S"
    if cat.startswith("M"):
        return "M"
    if cat[0] in "PS":
        return cat[0]
    return cat if cat.startswith("L") else "N" if cat.startswith("N") else "O"


def cls_regex(c):
    if regex.match(r"\s", c):
        return "S"
    if regex.match(r"\p{M}", c):
        return "M"
    if regex.match(r"\p{P}", c):
        return "P"
    if regex.match(r"\p{S}", c):
        return "S"
    for cat in ("Lu", "Ll", "Lt", "Lm", "Lo"):
        if regex.match(r"\p{%s}" % cat, c):
            return cat
    return "N" if regex.match(r"\p{N}", c) else "O"


def main():
    if unicodedata.unidata_version != "14.0.0":
        sys.exit("expects Python 3.11's unicodedata (Unicode 14.0), not %s" % unicodedata.unidata_version)
    rng = random.Random(7)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        "'''''sStTrReEvVmMlLdD",  # contractions, in either case
        "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~",
        "   \t\n\r\n\x0b\x0c",
        "\u00a0\u3000\u2009\u0085\u2028\u1680\u202f",
        "\u00e9\u00df\u00f1\u0416\u03b1\u05d0\u0627\u0915\u093f\u094d\u0e01\u1780\u17b6",
        "\u00c9\u00c5\u0416\u03a3\u01c5\u1f88\u02b0\u3005ABCXYZ",  # Lu, Lt, Lm: case-aware rules
        "\u4e2d\u6587\u5b57\ud55c\uad6d\u3042\u30a2",
        "\u00b2\u00b3\u00bd\u2167\u0663\u0967\uff11\u2460",
        "\u0301\u0308\u0323\u20dd\u200d\ufe0f",
        "\U0001F600\U0001F680\u2705\u00a9\u20ac\u2581",
        "\U00010400\U0001d400\U0001f1e6",
        "\u200d\u200b\x01\x7f\u00ad\u2060",  # Cf, Cc: matched by no DeepSeek-V3 alternative
        "\u3001\u300c\uff01\u00bf\u2014\u00a7\u00b0\u2190\u221e\u0e3f",  # P, S beyond ASCII
        "\u65e5\u672c\u3072\u3089\u30ab\u30ca\u30fc\u4e00\u9fa5\u9fa6",  # CJK and kana edges
        "\u0800\u0801\u0e01\u0e48\u3400\uac00\ud7a3\ud7ff\u00a1\u3008",  # DeepSeek-Coder range edges
        "\u01bb\u0294\u2126\u212a\u1fbe\u1f7d\u1fd3\uff5e\u201c\u3002\u3003\u00b5\u1e9e",  # DeepSeek LLM class edges
    ]
    chars = []
    for pool in pools:
        for c in pool:
            if c in "\u017f\u212a":
                continue
            if cls14(c) != cls_regex(c):
                sys.exit("class of U+%04X differs between Unicode 14.0 and the regex module" % ord(c))
            chars.append(c)
    out = [
        "# Pre-tokenizer splits generated by tests/tokenizer/gen_pretok_vectors.py with Python %s's"
        % sys.version.split()[0],
        "# `regex` module %s (format: rule;code points;word lengths). Do not edit: rerun the script."
        % regex.__version__,
    ]
    words = ["the", " world", "'s", "'RE", "don't", "I'M", " 12345", "3.14", "x=1;", "\r\n", "  ", "\t\t",
             "...", "!!", "ab12cd", " 2024", "(foo)", "\n\n\n", " \u4e2d\u6587", "caf\u00e9",
             "HelloWorld", "ABCdef", "iPhone", "HTTPServer", " McDonald's", "e\u0301t\u00c9", "a/b/\n",
             "-foo", ".NET", " \u65e5\u672c\u8a9e", "\u200d\u200d", "x\u200dy"]
    n = 0
    for rule in RULES:
        for _ in range(300):
            parts = []
            for _ in range(rng.randint(1, 12)):
                if rng.random() < 0.3:
                    parts.append(rng.choice(words))
                else:
                    pool = rng.choice(pools)
                    parts.append("".join(rng.choice([c for c in pool if c in chars])
                                         for _ in range(rng.randint(1, 4))))
            s = "".join(parts)
            split = RULES[rule](s)
            assert "".join(split) == s
            out.append("%s;%s;%s" % (rule, " ".join("%X" % ord(c) for c in s), " ".join(str(len(w)) for w in split)))
            n += 1
    out.insert(2, "# %d lines, 300 per rule (%s)." % (n, ", ".join(RULES)))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
