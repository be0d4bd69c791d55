/* The JSON parser: values, escapes, errors with positions, the depth bound. */
#include "model/json.h"
#include "model_check.h"

static shoal__json *parse(const char *s, int want_rc) {
    shoal__json *d = NULL;
    char err[128] = "";
    int rc = shoal__json_parse(s, strlen(s), &d, err, sizeof err);
    CHECK_RC(rc, want_rc, err);
    if (want_rc) CHECK(d == NULL && strstr(err, "line "));
    return d;
}

int main(void) {
    shoal__json *d = parse("{\"a\": [1, -2.5e3, true, null, \"x\\u00e9\\ud83d\\ude00\\n\"], \"b\": {\"c\": 9007199254740993}}", 0);
    const shoal__jv *r = shoal__json_root(d), *a = shoal__json_get(r, "a");
    CHECK(shoal__json_type(r) == SHOAL__JSON_OBJECT && shoal__json_count(r) == 2);
    CHECK(shoal__json_count(a) == 5);
    int64_t i;
    double x;
    int b;
    CHECK(shoal__json_int(shoal__json_at(a, 0), &i) == 0 && i == 1);
    CHECK(shoal__json_number(shoal__json_at(a, 1), &x) == 0 && x == -2500);
    CHECK(shoal__json_int(shoal__json_at(a, 1), &i) == 0 && i == -2500);
    CHECK(shoal__json_bool(shoal__json_at(a, 2), &b) == 0 && b == 1);
    CHECK(shoal__json_type(shoal__json_at(a, 3)) == SHOAL__JSON_NULL);
    char buf[32];
    size_t n;
    CHECK(shoal__json_str(shoal__json_at(a, 4), buf, sizeof buf, &n) == 0);
    CHECK(n == 8 && memcmp(buf, "x\xc3\xa9\xf0\x9f\x98\x80\n", 8) == 0);
    CHECK(shoal__json_str(shoal__json_at(a, 4), buf, 4, &n) == SHOAL_ERR_TRUNCATED && n == 8);
    /* integers beyond 2^53 are exact */
    CHECK(shoal__json_int(shoal__json_get(shoal__json_get(r, "b"), "c"), &i) == 0 && i == 9007199254740993ll);
    CHECK(shoal__json_int(shoal__json_at(a, 2), &i) == SHOAL_ERR_FORMAT);
    CHECK(shoal__json_get(r, "missing") == NULL);
    shoal__json_free(d);

    const char *bad[] = {"", "{", "[1,]", "{\"a\" 1}", "\"abc", "01", "1.", "-", "tru", "{\"a\":1} x",
                         "\"\\x\"", "\"\\u12\"", "[1 2]", "{1:2}", "\"a\nb\""};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) parse(bad[k], SHOAL_ERR_FORMAT);

    /* depth: 64 nested arrays are fine, 65 are not; 100000 do not blow the stack */
    char deep[200001];
    for (int depth = 63; depth <= 65; depth++) {
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        deep[2 * depth] = 0;
        shoal__json *dd = parse(deep, depth <= 64 ? 0 : SHOAL_ERR_FORMAT);
        shoal__json_free(dd);
    }
    memset(deep, '[', 100000);
    deep[100000] = 0;
    parse(deep, SHOAL_ERR_FORMAT);
    TEST_DONE();
}
