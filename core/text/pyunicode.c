/* Python's str case operations and character classes over utf8proc. utf8proc
 * has the simple (one code point) case mappings; Python uses the full ones, so
 * the code points whose full mapping is several characters (SpecialCasing.txt's
 * unconditional entries: ß -> SS, ﬁ -> FI, İ -> i̇, ...) are listed here, as are
 * the Other_Lowercase / Other_Uppercase code points that Python counts as cased
 * (ª, ⓐ, Ⅰ, ...), and the characters outside Nd that str.isdigit takes (²,
 * ①, ...) and those outside N* that str.isnumeric takes (CJK numerals 一, 万).
 * The lists were read off CPython 3.11 (Unicode 14): [c for c in all code
 * points if len(c.upper()) > 1 or ...], c.islower() and category != "Ll", ... Context rules follow CPython's unicodeobject.c: the final
 * sigma, title() lowering after a cased letter, capitalize() titling the first. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include "text/pyunicode.h"

typedef struct {
    int32_t cp, lower[3], upper[3], title[3]; /* zero-terminated when shorter */
} special_case;

static const special_case SPECIAL[] = {
{0x00DF, {0x00DF}, {0x0053, 0x0053}, {0x0053, 0x0073}},
    {0x0130, {0x0069, 0x0307}, {0x0130}, {0x0130}},
    {0x0149, {0x0149}, {0x02BC, 0x004E}, {0x02BC, 0x004E}},
    {0x01F0, {0x01F0}, {0x004A, 0x030C}, {0x004A, 0x030C}},
    {0x0390, {0x0390}, {0x0399, 0x0308, 0x0301}, {0x0399, 0x0308, 0x0301}},
    {0x03B0, {0x03B0}, {0x03A5, 0x0308, 0x0301}, {0x03A5, 0x0308, 0x0301}},
    {0x0587, {0x0587}, {0x0535, 0x0552}, {0x0535, 0x0582}},
    {0x1E96, {0x1E96}, {0x0048, 0x0331}, {0x0048, 0x0331}},
    {0x1E97, {0x1E97}, {0x0054, 0x0308}, {0x0054, 0x0308}},
    {0x1E98, {0x1E98}, {0x0057, 0x030A}, {0x0057, 0x030A}},
    {0x1E99, {0x1E99}, {0x0059, 0x030A}, {0x0059, 0x030A}},
    {0x1E9A, {0x1E9A}, {0x0041, 0x02BE}, {0x0041, 0x02BE}},
    {0x1F50, {0x1F50}, {0x03A5, 0x0313}, {0x03A5, 0x0313}},
    {0x1F52, {0x1F52}, {0x03A5, 0x0313, 0x0300}, {0x03A5, 0x0313, 0x0300}},
    {0x1F54, {0x1F54}, {0x03A5, 0x0313, 0x0301}, {0x03A5, 0x0313, 0x0301}},
    {0x1F56, {0x1F56}, {0x03A5, 0x0313, 0x0342}, {0x03A5, 0x0313, 0x0342}},
    {0x1F80, {0x1F80}, {0x1F08, 0x0399}, {0x1F88}},
    {0x1F81, {0x1F81}, {0x1F09, 0x0399}, {0x1F89}},
    {0x1F82, {0x1F82}, {0x1F0A, 0x0399}, {0x1F8A}},
    {0x1F83, {0x1F83}, {0x1F0B, 0x0399}, {0x1F8B}},
    {0x1F84, {0x1F84}, {0x1F0C, 0x0399}, {0x1F8C}},
    {0x1F85, {0x1F85}, {0x1F0D, 0x0399}, {0x1F8D}},
    {0x1F86, {0x1F86}, {0x1F0E, 0x0399}, {0x1F8E}},
    {0x1F87, {0x1F87}, {0x1F0F, 0x0399}, {0x1F8F}},
    {0x1F88, {0x1F80}, {0x1F08, 0x0399}, {0x1F88}},
    {0x1F89, {0x1F81}, {0x1F09, 0x0399}, {0x1F89}},
    {0x1F8A, {0x1F82}, {0x1F0A, 0x0399}, {0x1F8A}},
    {0x1F8B, {0x1F83}, {0x1F0B, 0x0399}, {0x1F8B}},
    {0x1F8C, {0x1F84}, {0x1F0C, 0x0399}, {0x1F8C}},
    {0x1F8D, {0x1F85}, {0x1F0D, 0x0399}, {0x1F8D}},
    {0x1F8E, {0x1F86}, {0x1F0E, 0x0399}, {0x1F8E}},
    {0x1F8F, {0x1F87}, {0x1F0F, 0x0399}, {0x1F8F}},
    {0x1F90, {0x1F90}, {0x1F28, 0x0399}, {0x1F98}},
    {0x1F91, {0x1F91}, {0x1F29, 0x0399}, {0x1F99}},
    {0x1F92, {0x1F92}, {0x1F2A, 0x0399}, {0x1F9A}},
    {0x1F93, {0x1F93}, {0x1F2B, 0x0399}, {0x1F9B}},
    {0x1F94, {0x1F94}, {0x1F2C, 0x0399}, {0x1F9C}},
    {0x1F95, {0x1F95}, {0x1F2D, 0x0399}, {0x1F9D}},
    {0x1F96, {0x1F96}, {0x1F2E, 0x0399}, {0x1F9E}},
    {0x1F97, {0x1F97}, {0x1F2F, 0x0399}, {0x1F9F}},
    {0x1F98, {0x1F90}, {0x1F28, 0x0399}, {0x1F98}},
    {0x1F99, {0x1F91}, {0x1F29, 0x0399}, {0x1F99}},
    {0x1F9A, {0x1F92}, {0x1F2A, 0x0399}, {0x1F9A}},
    {0x1F9B, {0x1F93}, {0x1F2B, 0x0399}, {0x1F9B}},
    {0x1F9C, {0x1F94}, {0x1F2C, 0x0399}, {0x1F9C}},
    {0x1F9D, {0x1F95}, {0x1F2D, 0x0399}, {0x1F9D}},
    {0x1F9E, {0x1F96}, {0x1F2E, 0x0399}, {0x1F9E}},
    {0x1F9F, {0x1F97}, {0x1F2F, 0x0399}, {0x1F9F}},
    {0x1FA0, {0x1FA0}, {0x1F68, 0x0399}, {0x1FA8}},
    {0x1FA1, {0x1FA1}, {0x1F69, 0x0399}, {0x1FA9}},
    {0x1FA2, {0x1FA2}, {0x1F6A, 0x0399}, {0x1FAA}},
    {0x1FA3, {0x1FA3}, {0x1F6B, 0x0399}, {0x1FAB}},
    {0x1FA4, {0x1FA4}, {0x1F6C, 0x0399}, {0x1FAC}},
    {0x1FA5, {0x1FA5}, {0x1F6D, 0x0399}, {0x1FAD}},
    {0x1FA6, {0x1FA6}, {0x1F6E, 0x0399}, {0x1FAE}},
    {0x1FA7, {0x1FA7}, {0x1F6F, 0x0399}, {0x1FAF}},
    {0x1FA8, {0x1FA0}, {0x1F68, 0x0399}, {0x1FA8}},
    {0x1FA9, {0x1FA1}, {0x1F69, 0x0399}, {0x1FA9}},
    {0x1FAA, {0x1FA2}, {0x1F6A, 0x0399}, {0x1FAA}},
    {0x1FAB, {0x1FA3}, {0x1F6B, 0x0399}, {0x1FAB}},
    {0x1FAC, {0x1FA4}, {0x1F6C, 0x0399}, {0x1FAC}},
    {0x1FAD, {0x1FA5}, {0x1F6D, 0x0399}, {0x1FAD}},
    {0x1FAE, {0x1FA6}, {0x1F6E, 0x0399}, {0x1FAE}},
    {0x1FAF, {0x1FA7}, {0x1F6F, 0x0399}, {0x1FAF}},
    {0x1FB2, {0x1FB2}, {0x1FBA, 0x0399}, {0x1FBA, 0x0345}},
    {0x1FB3, {0x1FB3}, {0x0391, 0x0399}, {0x1FBC}},
    {0x1FB4, {0x1FB4}, {0x0386, 0x0399}, {0x0386, 0x0345}},
    {0x1FB6, {0x1FB6}, {0x0391, 0x0342}, {0x0391, 0x0342}},
    {0x1FB7, {0x1FB7}, {0x0391, 0x0342, 0x0399}, {0x0391, 0x0342, 0x0345}},
    {0x1FBC, {0x1FB3}, {0x0391, 0x0399}, {0x1FBC}},
    {0x1FC2, {0x1FC2}, {0x1FCA, 0x0399}, {0x1FCA, 0x0345}},
    {0x1FC3, {0x1FC3}, {0x0397, 0x0399}, {0x1FCC}},
    {0x1FC4, {0x1FC4}, {0x0389, 0x0399}, {0x0389, 0x0345}},
    {0x1FC6, {0x1FC6}, {0x0397, 0x0342}, {0x0397, 0x0342}},
    {0x1FC7, {0x1FC7}, {0x0397, 0x0342, 0x0399}, {0x0397, 0x0342, 0x0345}},
    {0x1FCC, {0x1FC3}, {0x0397, 0x0399}, {0x1FCC}},
    {0x1FD2, {0x1FD2}, {0x0399, 0x0308, 0x0300}, {0x0399, 0x0308, 0x0300}},
    {0x1FD3, {0x1FD3}, {0x0399, 0x0308, 0x0301}, {0x0399, 0x0308, 0x0301}},
    {0x1FD6, {0x1FD6}, {0x0399, 0x0342}, {0x0399, 0x0342}},
    {0x1FD7, {0x1FD7}, {0x0399, 0x0308, 0x0342}, {0x0399, 0x0308, 0x0342}},
    {0x1FE2, {0x1FE2}, {0x03A5, 0x0308, 0x0300}, {0x03A5, 0x0308, 0x0300}},
    {0x1FE3, {0x1FE3}, {0x03A5, 0x0308, 0x0301}, {0x03A5, 0x0308, 0x0301}},
    {0x1FE4, {0x1FE4}, {0x03A1, 0x0313}, {0x03A1, 0x0313}},
    {0x1FE6, {0x1FE6}, {0x03A5, 0x0342}, {0x03A5, 0x0342}},
    {0x1FE7, {0x1FE7}, {0x03A5, 0x0308, 0x0342}, {0x03A5, 0x0308, 0x0342}},
    {0x1FF2, {0x1FF2}, {0x1FFA, 0x0399}, {0x1FFA, 0x0345}},
    {0x1FF3, {0x1FF3}, {0x03A9, 0x0399}, {0x1FFC}},
    {0x1FF4, {0x1FF4}, {0x038F, 0x0399}, {0x038F, 0x0345}},
    {0x1FF6, {0x1FF6}, {0x03A9, 0x0342}, {0x03A9, 0x0342}},
    {0x1FF7, {0x1FF7}, {0x03A9, 0x0342, 0x0399}, {0x03A9, 0x0342, 0x0345}},
    {0x1FFC, {0x1FF3}, {0x03A9, 0x0399}, {0x1FFC}},
    {0xFB00, {0xFB00}, {0x0046, 0x0046}, {0x0046, 0x0066}},
    {0xFB01, {0xFB01}, {0x0046, 0x0049}, {0x0046, 0x0069}},
    {0xFB02, {0xFB02}, {0x0046, 0x004C}, {0x0046, 0x006C}},
    {0xFB03, {0xFB03}, {0x0046, 0x0046, 0x0049}, {0x0046, 0x0066, 0x0069}},
    {0xFB04, {0xFB04}, {0x0046, 0x0046, 0x004C}, {0x0046, 0x0066, 0x006C}},
    {0xFB05, {0xFB05}, {0x0053, 0x0054}, {0x0053, 0x0074}},
    {0xFB06, {0xFB06}, {0x0053, 0x0054}, {0x0053, 0x0074}},
    {0xFB13, {0xFB13}, {0x0544, 0x0546}, {0x0544, 0x0576}},
    {0xFB14, {0xFB14}, {0x0544, 0x0535}, {0x0544, 0x0565}},
    {0xFB15, {0xFB15}, {0x0544, 0x053B}, {0x0544, 0x056B}},
    {0xFB16, {0xFB16}, {0x054E, 0x0546}, {0x054E, 0x0576}},
    {0xFB17, {0xFB17}, {0x0544, 0x053D}, {0x0544, 0x056D}},
};

typedef struct {
    int32_t lo, hi;
} cp_range;

static const cp_range OTHER_LOWER[] = {
    {0x00AA, 0x00AA}, {0x00BA, 0x00BA}, {0x02B0, 0x02B8}, {0x02C0, 0x02C1}, {0x02E0, 0x02E4},
    {0x0345, 0x0345}, {0x037A, 0x037A}, {0x1D2C, 0x1D6A}, {0x1D78, 0x1D78}, {0x1D9B, 0x1DBF},
    {0x2071, 0x2071}, {0x207F, 0x207F}, {0x2090, 0x209C}, {0x2170, 0x217F}, {0x24D0, 0x24E9},
    {0x2C7C, 0x2C7D}, {0xA69C, 0xA69D}, {0xA770, 0xA770}, {0xA7F8, 0xA7F9}, {0xAB5C, 0xAB5F},
    {0x10780, 0x10780}, {0x10783, 0x10785}, {0x10787, 0x107B0}, {0x107B2, 0x107BA},
};
static const cp_range OTHER_UPPER[] = {
    {0x2160, 0x216F}, {0x24B6, 0x24CF}, {0x1F130, 0x1F149}, {0x1F150, 0x1F169}, {0x1F170, 0x1F189},
};

/* Numeric_Type=Digit outside Nd, and Numeric_Type=Numeric outside N* */
static const cp_range OTHER_DIGIT[] = {
    {0x00B2, 0x00B3}, {0x00B9, 0x00B9}, {0x1369, 0x1371}, {0x19DA, 0x19DA}, {0x2070, 0x2070},
    {0x2074, 0x2079}, {0x2080, 0x2089}, {0x2460, 0x2468}, {0x2474, 0x247C}, {0x2488, 0x2490},
    {0x24EA, 0x24EA}, {0x24F5, 0x24FD}, {0x24FF, 0x24FF}, {0x2776, 0x277E}, {0x2780, 0x2788},
    {0x278A, 0x2792}, {0x10A40, 0x10A43}, {0x10E60, 0x10E68}, {0x11052, 0x1105A},
    {0x1F100, 0x1F10A},
};
static const int32_t OTHER_NUMERIC[] = {
    0x3405, 0x3483, 0x382A, 0x3B4D, 0x4E00, 0x4E03, 0x4E07, 0x4E09, 0x4E5D, 0x4E8C, 0x4E94, 0x4E96,
    0x4EBF, 0x4EC0, 0x4EDF, 0x4EE8, 0x4F0D, 0x4F70, 0x5104, 0x5146, 0x5169, 0x516B, 0x516D, 0x5341,
    0x5343, 0x5344, 0x5345, 0x534C, 0x53C1, 0x53C2, 0x53C3, 0x53C4, 0x56DB, 0x58F1, 0x58F9, 0x5E7A,
    0x5EFE, 0x5EFF, 0x5F0C, 0x5F0D, 0x5F0E, 0x5F10, 0x62FE, 0x634C, 0x67D2, 0x6F06, 0x7396, 0x767E,
    0x8086, 0x842C, 0x8CAE, 0x8CB3, 0x8D30, 0x9621, 0x9646, 0x964C, 0x9678, 0x96F6, 0xF96B, 0xF973,
    0xF978, 0xF9B2, 0xF9D1, 0xF9D3, 0xF9FD, 0x20001, 0x20064, 0x200E2, 0x20121, 0x2092A, 0x20983,
    0x2098C, 0x2099C, 0x20AEA, 0x20AFD, 0x20B19, 0x22390, 0x22998, 0x23B1B, 0x2626D, 0x2F890,
};

/* Word_Break MidLetter / MidNumLet / Single_Quote: case-ignorable besides the
 * categories Mn, Me, Cf, Lm and Sk */
static const int32_t IGNORABLE_PUNCT[] = {0x27, 0x2E, 0x3A, 0xB7, 0x387, 0x55F, 0x5F4, 0x2018, 0x2019,
                                          0x2024, 0x2027, 0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A};

static const special_case *find_special(int32_t cp)
{
    size_t lo = 0, hi = sizeof(SPECIAL) / sizeof(SPECIAL[0]);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (SPECIAL[mid].cp == cp) return &SPECIAL[mid];
        if (SPECIAL[mid].cp < cp) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static bool in_ranges(const cp_range *r, size_t n, int32_t cp)
{
    for (size_t i = 0; i < n; i++)
        if (cp >= r[i].lo && cp <= r[i].hi) return true;
    return false;
}

static bool is_lower(int32_t cp)
{
    return utf8proc_category(cp) == UTF8PROC_CATEGORY_LL ||
           in_ranges(OTHER_LOWER, sizeof(OTHER_LOWER) / sizeof(OTHER_LOWER[0]), cp);
}

static bool is_upper(int32_t cp)
{
    return utf8proc_category(cp) == UTF8PROC_CATEGORY_LU ||
           in_ranges(OTHER_UPPER, sizeof(OTHER_UPPER) / sizeof(OTHER_UPPER[0]), cp);
}

static bool is_cased(int32_t cp)
{
    return cp >= 0 && (is_lower(cp) || is_upper(cp) || utf8proc_category(cp) == UTF8PROC_CATEGORY_LT);
}

static bool is_case_ignorable(int32_t cp)
{
    if (cp < 0) return false;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_SK:
        return true;
    default:
        break;
    }
    for (size_t i = 0; i < sizeof(IGNORABLE_PUNCT) / sizeof(IGNORABLE_PUNCT[0]); i++)
        if (IGNORABLE_PUNCT[i] == cp) return true;
    return false;
}

/* writes the mapping of cp into m (at most 3 code points), returns the count */
static int copy_seq(const int32_t *seq, int32_t *m)
{
    int k = 0;
    while (k < 3 && seq[k]) { m[k] = seq[k]; k++; }
    return k;
}

static int lower_full(int32_t cp, int32_t *m)
{
    const special_case *sc = find_special(cp);
    if (sc) return copy_seq(sc->lower, m);
    m[0] = utf8proc_tolower(cp);
    return 1;
}

static int upper_full(int32_t cp, int32_t *m)
{
    const special_case *sc = find_special(cp);
    if (sc) return copy_seq(sc->upper, m);
    m[0] = utf8proc_toupper(cp);
    return 1;
}

static int title_full(int32_t cp, int32_t *m)
{
    const special_case *sc = find_special(cp);
    if (sc) return copy_seq(sc->title, m);
    m[0] = utf8proc_totitle(cp);
    return 1;
}

static int fold_full(int32_t cp, int32_t *m)
{
    utf8proc_int32_t buf[8];
    int lbc = 0;
    utf8proc_ssize_t k = utf8proc_decompose_char(cp, buf, 8, UTF8PROC_CASEFOLD, &lbc);
    if (k < 1 || k > 3) return lower_full(cp, m);
    for (utf8proc_ssize_t i = 0; i < k; i++) m[i] = buf[i];
    return (int)k;
}

/* Σ lowers to ς at the end of a word: a cased letter before it and none
 * after it, skipping case-ignorable characters both ways */
static int32_t lower_sigma(const int32_t *cps, size_t n, size_t i)
{
    size_t j = i;
    while (j > 0 && is_case_ignorable(cps[j - 1])) j--;
    bool final = j > 0 && is_cased(cps[j - 1]);
    if (final) {
        size_t k = i + 1;
        while (k < n && is_case_ignorable(cps[k])) k++;
        final = k == n || !is_cased(cps[k]);
    }
    return final ? 0x3C2 : 0x3C3;
}

static int lower_at(const int32_t *cps, size_t n, size_t i, int32_t *m)
{
    if (cps[i] == 0x3A3) { m[0] = lower_sigma(cps, n, i); return 1; }
    return lower_full(cps[i], m);
}

lfl_status lfl_pyunicode_case(const char *s, size_t n, lfl_case_op op, char **out, size_t *out_n)
{
    *out = NULL;
    *out_n = 0;
    /* code points, with a byte that is not valid UTF-8 kept as -1 - byte */
    int32_t *cps = malloc((n ? n : 1) * sizeof(int32_t));
    char *buf = malloc(n * 12 + 1); /* each code point maps to at most 3 of 4 bytes each */
    if (!cps || !buf) {
        free(cps);
        free(buf);
        return lfl_fail(LFL_ERR_MEM, "unicode case mapping: out of memory for %zu bytes", n);
    }
    size_t count = 0;
    for (size_t p = 0; p < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + p, (utf8proc_ssize_t)(n - p), &cp);
        if (k < 1) { cps[count++] = -1 - (int32_t)(unsigned char)s[p]; p++; }
        else { cps[count++] = cp; p += (size_t)k; }
    }
    size_t w = 0;
    bool prev_cased = false;
    for (size_t i = 0; i < count; i++) {
        int32_t c = cps[i], m[3];
        int k;
        if (c < 0) { buf[w++] = (char)(-1 - c); prev_cased = false; continue; }
        switch (op) {
        case LFL_CASE_LOWER: k = lower_at(cps, count, i, m); break;
        case LFL_CASE_UPPER: k = upper_full(c, m); break;
        case LFL_CASE_CASEFOLD: k = fold_full(c, m); break;
        case LFL_CASE_TITLE:
            k = prev_cased ? lower_at(cps, count, i, m) : title_full(c, m);
            prev_cased = is_cased(c);
            break;
        case LFL_CASE_CAPITALIZE: k = i == 0 ? title_full(c, m) : lower_at(cps, count, i, m); break;
        case LFL_CASE_SWAPCASE:
            if (is_upper(c)) k = lower_at(cps, count, i, m);
            else if (is_lower(c)) k = upper_full(c, m);
            else { m[0] = c; k = 1; }
            break;
        default:
            free(cps);
            free(buf);
            return lfl_fail(LFL_ERR_ARG, "unicode case mapping: unknown operation %d", (int)op);
        }
        for (int j = 0; j < k; j++) w += (size_t)utf8proc_encode_char(m[j], (utf8proc_uint8_t *)buf + w);
    }
    free(cps);
    buf[w] = 0;
    *out = buf;
    *out_n = w;
    return LFL_OK;
}

int lfl_pyunicode_casing(int32_t cp)
{
    return (is_lower(cp) ? LFL_CASING_LOWER : 0) | (is_upper(cp) ? LFL_CASING_UPPER : 0) |
           (utf8proc_category(cp) == UTF8PROC_CATEGORY_LT ? LFL_CASING_TITLE : 0);
}

int lfl_pyunicode_numeric(int32_t cp)
{
    utf8proc_category_t cat = utf8proc_category(cp);
    if (cat == UTF8PROC_CATEGORY_ND) return LFL_NUMERIC_DECIMAL;
    if (in_ranges(OTHER_DIGIT, sizeof(OTHER_DIGIT) / sizeof(OTHER_DIGIT[0]), cp)) return LFL_NUMERIC_DIGIT;
    if (cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO) return LFL_NUMERIC_NUMERIC;
    for (size_t i = 0; i < sizeof(OTHER_NUMERIC) / sizeof(OTHER_NUMERIC[0]); i++)
        if (OTHER_NUMERIC[i] == cp) return LFL_NUMERIC_NUMERIC;
    return 0;
}

const char *lfl_pyunicode_category(int32_t cp)
{
    return utf8proc_category_string(cp);
}

bool lfl_pyunicode_isprintable(int32_t cp)
{
    if (cp == ' ') return true;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CN: case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP: case UTF8PROC_CATEGORY_ZS:
        return false;
    default:
        return true;
    }
}
