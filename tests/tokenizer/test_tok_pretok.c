/* Pre-tokenizer rules (src/model/tokenizer/pretok.c) split representative strings into the
 * words the regexes give. The expectations are worked out by hand from the regexes as
 * llama.cpp / Hugging Face apply them (leftmost alternative, greedy, (?!\S) backing off one
 * whitespace character); for StarCoder, llama.cpp's two-step split: \p{N} first, then the GPT-2
 * regex over each piece in between, so a piece ends before every number. The byte-level
 * vocabularies' llama.cpp .out tests cover GPT-2, Llama-3 and Qwen2 on real text; this file is
 * mostly for the rules without such data (StarCoder), plus the loaders' names for them. Then
 * pretok_vectors.txt: random text in many scripts split by the Python `regex` module running
 * the real regexes (gen_pretok_vectors.py), for all four rules.
 *
 *   test_tok_pretok [pretok_vectors.txt] */
#include <stdint.h>

#include "model/tokenizer/normalize.h"
#include "model/tokenizer/tok_internal.h"
#include "model/tokenizer/unicode.h"
#include "tests/tokenizer/tok_check.h"

typedef struct split_case {
    int rule;
    const char *text;
    const char *words[16]; /* NULL-terminated */
} split_case;

static const split_case cases[] = {
    /* StarCoder: every number alone, never joined to the space before it */
    {SHOAL__PRE_STARCODER, "int x = 12345;", {"int", " x", " =", " ", "1", "2", "3", "4", "5", ";", NULL}},
    {SHOAL__PRE_STARCODER, "a   1", {"a", "   ", "1", NULL}},
    {SHOAL__PRE_STARCODER, "  hello 3d", {" ", " hello", " ", "3", "d", NULL}},
    {SHOAL__PRE_STARCODER, "x1y22", {"x", "1", "y", "2", "2", NULL}},
    {SHOAL__PRE_STARCODER, "it's 2024's", {"it", "'s", " ", "2", "0", "2", "4", "'s", NULL}},
    {SHOAL__PRE_STARCODER, "\t\n1\n", {"\t\n", "1", "\n", NULL}},
    {SHOAL__PRE_STARCODER, "v\xC2\xB2 \xE2\x85\xA7", {"v", "\xC2\xB2", " ", "\xE2\x85\xA7", NULL}}, /* ² Ⅷ: \p{N} */
    {SHOAL__PRE_STARCODER, "foo  bar!!", {"foo", " ", " bar", "!!", NULL}},
    {SHOAL__PRE_STARCODER, "(3+4)*5", {"(", "3", "+", "4", ")*", "5", NULL}},
    {SHOAL__PRE_STARCODER, " \xFF" "9", {" \xFF", "9", NULL}}, /* an invalid byte is "other" */
    /* the same strings under GPT-2, for contrast */
    {SHOAL__PRE_GPT2, "int x = 12345;", {"int", " x", " =", " 12345", ";", NULL}},
    {SHOAL__PRE_GPT2, "a   1", {"a", "  ", " 1", NULL}},
    {SHOAL__PRE_GPT2, "it's 2024's", {"it", "'s", " 2024", "'s", NULL}},
    /* Llama-3 and Qwen2: digits in threes / one by one, a leading non-letter joins letters */
    {SHOAL__PRE_LLAMA3, "x = 1234567", {"x", " =", " ", "123", "456", "7", NULL}},
    {SHOAL__PRE_QWEN2, "x = 123", {"x", " =", " ", "1", "2", "3", NULL}},
    {SHOAL__PRE_LLAMA3, "(hello) \n\n  world", {"(hello", ")", " \n\n", " ", " world", NULL}},
    /* Tekken / GPT-4o: a word is upper* lower+ or upper+ lower* (Lm, Lo and marks in both) */
    {SHOAL__PRE_TEKKEN, "HelloWorld", {"Hello", "World", NULL}},
    {SHOAL__PRE_TEKKEN, "ABCdef HTTPServer", {"ABCdef", " HTTPServer", NULL}},
    {SHOAL__PRE_TEKKEN, "iPhone", {"i", "Phone", NULL}},
    {SHOAL__PRE_TEKKEN, " McDonald's", {" Mc", "Donald", "'s", NULL}},
    {SHOAL__PRE_GPT4O, " McDonald's", {" Mc", "Donald's", NULL}},
    {SHOAL__PRE_TEKKEN, "x = 123", {"x", " =", " ", "1", "2", "3", NULL}},
    {SHOAL__PRE_GPT4O, "x = 1234", {"x", " =", " ", "123", "4", NULL}},
    {SHOAL__PRE_TEKKEN, "a/b/\n", {"a", "/b", "/\n", NULL}},
    {SHOAL__PRE_TEKKEN, "e\xCC\x81t\xC3\x89", {"e\xCC\x81t", "\xC3\x89", NULL}},      /* a mark joins, É starts anew */
    {SHOAL__PRE_TEKKEN, "\xC7\x85ungla \xE4\xB8\xAD\xE6\x96\x87", {"\xC7\x85ungla", " \xE4\xB8\xAD\xE6\x96\x87", NULL}}, /* Lt, Lo */
    /* DeepSeek-V3: numbers in threes and CJK/kana runs first, then the main regex between */
    {SHOAL__PRE_DEEPSEEK3, "x = 1234567", {"x", " =", " ", "123", "456", "7", NULL}},
    {SHOAL__PRE_DEEPSEEK3, "I'm .NET-dev", {"I", "'m", " .", "NET", "-dev", NULL}},
    {SHOAL__PRE_DEEPSEEK3, " \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE", /* 日本語の */
     {" ", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE", NULL}},
    {SHOAL__PRE_DEEPSEEK3, "Hello,\xE4\xB8\x96\xE7\x95\x8C!", {"Hello", ",", "\xE4\xB8\x96\xE7\x95\x8C", "!", NULL}},
    {SHOAL__PRE_DEEPSEEK3, "a\xE2\x80\x8D\xE2\x80\x8D" "b", {"a", "\xE2\x80\x8D", "\xE2\x80\x8D" "b", NULL}}, /* ZWJ: no match */
    {SHOAL__PRE_DEEPSEEK3, "  $$ ok\n\n", {" ", " $$", " ok", "\n\n", NULL}},
    /* DeepSeek-Coder: five regexes one after the other; '+' is a symbol, not \p{P} */
    {SHOAL__PRE_DEEPSEEK_CODER, "def f(x):\n    return x+12",
     {"def", " f", "(", "x", "):", "\n", "   ", " return", " x", "+", "1", "2", NULL}},
    {SHOAL__PRE_DEEPSEEK_CODER, " \xE4\xB8\xAD\xE6\x96\x87" "abc", {" ", "\xE4\xB8\xAD\xE6\x96\x87", "abc", NULL}},
    {SHOAL__PRE_DEEPSEEK_CODER, "a, b!! 3.5", {"a", ",", " b", "!!", " ", "3", ".", "5", NULL}},
    {SHOAL__PRE_DEEPSEEK_CODER, "\xEA\xB0\x80\xEB\x82\x98 \xED\x95\x9C", {"\xEA\xB0\x80\xEB\x82\x98", " ", "\xED\x95\x9C", NULL}},
    /* DeepSeek LLM: its own letter and punctuation lists; trailing whitespace alone; numbers in
     * runs. [!-/:-~] holds the ASCII letters too, so "Qu" leaves the piece "Qu\u00e9" */
    {SHOAL__PRE_DEEPSEEK_LLM, "Hello world!  ", {"Hello", " world", "!", "  ", NULL}},
    {SHOAL__PRE_DEEPSEEK_LLM, "x = 12345\n", {"x", " =", " ", "12345", "\n", NULL}},
    {SHOAL__PRE_DEEPSEEK_LLM, " \xC2\xBFQu\xC3\xA9? \xE4\xB8\xAD\xE6\x96\x87",
     {" \xC2\xBF", "Qu", "\xC3\xA9", "?", " ", "\xE4\xB8\xAD\xE6\x96\x87", NULL}},
    {SHOAL__PRE_DEEPSEEK_LLM, "ab\xC6\xBB" "cd  e", {"ab", "\xC6\xBB", "cd", " ", " e", NULL}}, /* U+01BB: not listed */
};

static void check_case(const split_case *c, shoal__pretok *pt) {
    size_t len = strlen(c->text);
    pt->rule = c->rule;
    CHECK_EQ_INT(shoal__pretok_load(pt, (const unsigned char *)c->text, len, SHOAL__NORM_NONE, NULL), SHOAL_OK);
    size_t w = 0;
    int ok = 1;
    for (size_t i = 0; i < pt->n_chars;) {
        size_t j = shoal__pretok_next(pt, c->rule, i);
        const char *word = c->text + pt->off[i];
        size_t wl = pt->off[j] - pt->off[i];
        if (!c->words[w] || strlen(c->words[w]) != wl || memcmp(c->words[w], word, wl)) ok = 0;
        if (c->words[w]) w++;
        i = j;
    }
    if (c->words[w]) ok = 0;
    if (!ok) {
        fprintf(stderr, "rule %d: \"%s\" splits as:", c->rule, c->text);
        for (size_t i = 0; i < pt->n_chars;) {
            size_t j = shoal__pretok_next(pt, c->rule, i);
            fprintf(stderr, " [%.*s]", (int)(pt->off[j] - pt->off[i]), c->text + pt->off[i]);
            i = j;
        }
        fprintf(stderr, "\n");
        check_failures++;
    }
}

/* The names that select the StarCoder rule, in GGUF / the GPT-2 file loader. */
static void check_names(void) {
    static const char *const starcoder[] = {"starcoder", "refact", "command-r", "smollm", "codeshell",
                                            "exaone", "minerva-7b"};
    int im = -1;
    char err[1024] = "";
    for (size_t i = 0; i < sizeof starcoder / sizeof starcoder[0]; i++)
        CHECK_EQ_INT(shoal__tok_pre_by_name(starcoder[i], &im, "test", err, sizeof err), SHOAL__PRE_STARCODER);
    CHECK_EQ_INT(shoal__tok_pre_by_name("stablelm2", &im, "test", err, sizeof err), SHOAL__PRE_QWEN2);
    CHECK_EQ_INT(shoal__tok_pre_by_name("exaone4", &im, "test", err, sizeof err), SHOAL__PRE_GPT2);
    CHECK_EQ_INT(shoal__tok_pre_by_name("tekken", &im, "test", err, sizeof err), SHOAL__PRE_TEKKEN);
    CHECK_EQ_INT(im, 1); /* llama.cpp: tekken ignores merges */
    CHECK_EQ_INT(shoal__tok_pre_by_name("gpt-4o", &im, "test", err, sizeof err), SHOAL__PRE_GPT4O);
    CHECK_EQ_INT(shoal__tok_pre_by_name("llama4", &im, "test", err, sizeof err), SHOAL__PRE_GPT4O);
    CHECK_EQ_INT(shoal__tok_pre_by_name("deepseek-v3", &im, "test", err, sizeof err), SHOAL__PRE_DEEPSEEK3);
    CHECK_EQ_INT(shoal__tok_pre_by_name("deepseek-coder", &im, "test", err, sizeof err), SHOAL__PRE_DEEPSEEK_CODER);
    CHECK_EQ_INT(shoal__tok_pre_by_name("deepseek-llm", &im, "test", err, sizeof err), SHOAL__PRE_DEEPSEEK_LLM);
    CHECK_EQ_INT(shoal__tok_pre_by_name("falcon", &im, "test", err, sizeof err), -1);
    /* the refusal names the source and lists what is supported */
    CHECK(strstr(err, "test: pre-tokenizer \"falcon\" is not supported") && strstr(err, "qwen2"));
}

/* End to end: the GPT-2 vocabulary with the StarCoder rule encodes every digit as its own
 * token, and a tokenizer.json with Digits(individual_digits) + ByteLevel does the same. */
static void check_encode(void) {
    char a[1024], b[1024], err[512] = "";
    shoal_tokenizer *t = NULL;
    int rc = shoal_tokenizer_load_gpt2_files(testdata_path(a, sizeof a, "tokenizers/gpt2/encoder.json"),
                                             testdata_path(b, sizeof b, "tokenizers/gpt2/vocab.bpe"), "starcoder", &t,
                                             err, sizeof err);
    CHECK_RC(rc, SHOAL_OK, err);
    if (!t) return;
    static const char *const want[] = {"int", " x", " =", " ", "1", "2", "3", "4", "5", ";"};
    int32_t ids[32];
    size_t n;
    CHECK_RC(shoal_tokenizer_encode(t, "int x = 12345;", 14, 0, ids, 32, &n), SHOAL_OK, "");
    CHECK_EQ_INT(n, 10);
    for (size_t i = 0; i < n && i < 10; i++) {
        char piece[32];
        size_t pl;
        CHECK_RC(shoal_tokenizer_token_piece(t, ids[i], 0, piece, sizeof piece, &pl), SHOAL_OK, "");
        CHECK(pl == strlen(want[i]) && !memcmp(piece, want[i], pl));
    }
    shoal_tokenizer_free(t);
}

/* tokenizer.json: Digits(individual_digits) then ByteLevel(use_regex) is the StarCoder rule:
 * with a merge "Ġ 1", GPT-2's rule keeps " 1" one word (one token), StarCoder's splits it. */
static void check_json(void) {
    char json[1024], err[256] = "";
    static const char *const pres[] = {
        "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", \"individual_digits\": true}, "
        "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}]}",
        "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}",
        /* refused: contiguous digits, Digits after ByteLevel, Digits with a Split */
        "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", \"individual_digits\": false}, "
        "{\"type\": \"ByteLevel\"}]}",
        "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"ByteLevel\"}, {\"type\": \"Digits\", "
        "\"individual_digits\": true}]}",
        "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", \"individual_digits\": true}, "
        "{\"type\": \"ByteLevel\", \"use_regex\": false}]}",
    };
    for (size_t k = 0; k < sizeof pres / sizeof pres[0]; k++) {
        int n = snprintf(json, sizeof json,
                         "{\"pre_tokenizer\": %s, \"model\": {\"type\": \"BPE\", \"vocab\": {\"\xC4\xA0\": 0, "
                         "\"1\": 1, \"\xC4\xA0" "1\": 2, \"x\": 3}, \"merges\": [\"\xC4\xA0 1\"]}}",
                         pres[k]);
        shoal_tokenizer *t = NULL;
        int rc = shoal__tok_load_hf_json_mem(json, (size_t)n, "digits.json", &t, err, sizeof err);
        if (k >= 2) {
            CHECK_RC(rc, SHOAL_ERR_UNSUPPORTED, err);
            CHECK_CONTAINS(err, "Digits");
            shoal_tokenizer_free(t);
            continue;
        }
        CHECK_RC(rc, SHOAL_OK, err);
        if (!t) continue;
        int32_t ids[8];
        size_t m;
        CHECK_RC(shoal_tokenizer_encode(t, "x 1", 3, 0, ids, 8, &m), SHOAL_OK, "");
        if (k == 0) CHECK(m == 3 && ids[0] == 3 && ids[1] == 0 && ids[2] == 1);
        else CHECK(m == 2 && ids[0] == 3 && ids[1] == 2);
        shoal_tokenizer_free(t);
    }
}

/* Every line of pretok_vectors.txt: "rule;code points;word lengths". */
static void check_vectors(const char *path, shoal__pretok *pt) {
    size_t len;
    char *text = slurp(path, &len);
    CHECK(text != NULL);
    if (!text) return;
    size_t lines = 0, bad = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char *f1 = strchr(line, ';'), *f2 = f1 ? strchr(f1 + 1, ';') : NULL;
        if (!f2) {
            bad++;
            continue;
        }
        *f1 = *f2 = 0;
        int rule = !strcmp(line, "gpt2") ? SHOAL__PRE_GPT2 : !strcmp(line, "llama3") ? SHOAL__PRE_LLAMA3
                   : !strcmp(line, "qwen2") ? SHOAL__PRE_QWEN2 : !strcmp(line, "starcoder") ? SHOAL__PRE_STARCODER
                   : !strcmp(line, "tekken") ? SHOAL__PRE_TEKKEN : !strcmp(line, "gpt4o") ? SHOAL__PRE_GPT4O
                   : !strcmp(line, "deepseek3") ? SHOAL__PRE_DEEPSEEK3
                   : !strcmp(line, "deepseek-coder") ? SHOAL__PRE_DEEPSEEK_CODER
                   : !strcmp(line, "deepseek-llm") ? SHOAL__PRE_DEEPSEEK_LLM : -1;
        char s[4096];
        size_t sl = 0;
        for (char *p = f1 + 1; *p && sl + 4 < sizeof s;) {
            char *q;
            unsigned long cp = strtoul(p, &q, 16);
            if (q == p) break;
            sl += shoal__utf8_encode((uint32_t)cp, s + sl);
            p = q;
        }
        lines++;
        pt->rule = rule;
        if (rule < 0 || shoal__pretok_load(pt, (const unsigned char *)s, sl, SHOAL__NORM_NONE, NULL)) {
            bad++;
            continue;
        }
        int ok = 1;
        char *p = f2 + 1;
        size_t i = 0;
        while (i < pt->n_chars) {
            size_t j = shoal__pretok_next(pt, rule, i);
            char *q;
            unsigned long want = strtoul(p, &q, 10);
            if (q == p || want != j - i) {
                ok = 0;
                break;
            }
            p = q;
            i = j;
        }
        while (*p == ' ') p++;
        if (!ok || *p) {
            if (bad < 10) {
                fprintf(stderr, "%s: rule %s: \"%.*s\" splits as:", path, line, (int)sl, s);
                for (size_t k = 0; k < pt->n_chars;) {
                    size_t j = shoal__pretok_next(pt, rule, k);
                    fprintf(stderr, " [%.*s]", (int)(pt->off[j] - pt->off[k]), s + pt->off[k]);
                    k = j;
                }
                fprintf(stderr, "; want %s\n", f2 + 1);
            }
            bad++;
        }
    }
    fprintf(stderr, "%s: %zu lines, %zu differ\n", path, lines, bad);
    CHECK_EQ_INT(bad, 0);
    CHECK(lines >= 2700);
    free(text);
}

/* tokenizer.json Split with Mistral's Tekken regex (then ByteLevel without regex) selects the
 * Tekken rule: "HelloWorld" is two words, so no merge can join "o" and "W". */
static void check_json_tekken(void) {
    static const char rx[] =
        "[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?[\\\\p{Lu}\\\\p{Lt}\\\\p{Lm}\\\\p{Lo}\\\\p{M}]*[\\\\p{Ll}\\\\p{Lm}\\\\p{Lo}\\\\p{M}]+|"
        "[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?[\\\\p{Lu}\\\\p{Lt}\\\\p{Lm}\\\\p{Lo}\\\\p{M}]+[\\\\p{Ll}\\\\p{Lm}\\\\p{Lo}\\\\p{M}]*|\\\\p{N}| "
        "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n/]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+";
    char json[2048], err[256] = "";
    int n = snprintf(json, sizeof json,
                     "{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
                     "{\"Regex\": \"%s\"}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", "
                     "\"use_regex\": false}]}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"H\": 0, \"e\": 1, \"l\": 2, "
                     "\"o\": 3, \"W\": 4, \"r\": 5, \"d\": 6, \"oW\": 7}, \"merges\": [\"o W\"]}}",
                     rx);
    shoal_tokenizer *t = NULL;
    CHECK_RC(shoal__tok_load_hf_json_mem(json, (size_t)n, "tekken.json", &t, err, sizeof err), SHOAL_OK, err);
    if (!t) return;
    int32_t ids[16];
    size_t m;
    CHECK_RC(shoal_tokenizer_encode(t, "HelloWorld", 10, 0, ids, 16, &m), SHOAL_OK, "");
    CHECK(m == 10 && ids[4] == 3 && ids[5] == 4); /* "o" and "W" stay apart */
    shoal_tokenizer_free(t);
}

int main(int argc, char **argv) {
    shoal__pretok pt = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i], &pt);
    if (argc > 1) check_vectors(argv[1], &pt);
    shoal__pretok_free(&pt);
    check_names();
    check_encode();
    check_json();
    check_json_tekken();
    return check_report("tok_pretok");
}
