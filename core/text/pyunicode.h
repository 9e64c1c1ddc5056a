/* Python's str semantics for Unicode that need the character database:
 * lower/upper/title/capitalize/swapcase/casefold with full (multi-character)
 * mappings and the final-sigma rule, the general category, casing and numeric
 * type of a code point and str.isprintable. Backed by utf8proc; the Jinja interpreter reaches it through
 * lfl._unicode (lua/l_unicode.c). */
#ifndef LFL_TEXT_PYUNICODE_H
#define LFL_TEXT_PYUNICODE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"

typedef enum {
    LFL_CASE_LOWER,
    LFL_CASE_UPPER,
    LFL_CASE_TITLE,
    LFL_CASE_CAPITALIZE,
    LFL_CASE_SWAPCASE,
    LFL_CASE_CASEFOLD,
} lfl_case_op;

/* The case-mapped copy of UTF-8 s[0..n) as Python's str.<op>() gives it; *out
 * is malloc'ed (caller frees), *out_n its length. Bytes that are not valid
 * UTF-8 are copied unchanged. */
lfl_status lfl_pyunicode_case(const char *s, size_t n, lfl_case_op op, char **out, size_t *out_n);

/* The two-letter general category of a code point ("Lu", "Cn", ...) */
const char *lfl_pyunicode_category(int32_t cp);

/* Python's casing properties of a code point: LFL_CASING_LOWER (Lowercase:
 * Ll and Other_Lowercase), LFL_CASING_UPPER (Uppercase: Lu and
 * Other_Uppercase), LFL_CASING_TITLE (Lt), or'ed; 0 for uncased */
enum { LFL_CASING_LOWER = 1, LFL_CASING_UPPER = 2, LFL_CASING_TITLE = 4 };
int lfl_pyunicode_casing(int32_t cp);

/* Python's Numeric_Type of a code point: 0 (none), LFL_NUMERIC_DECIMAL
 * (str.isdecimal, and so isdigit and isnumeric), LFL_NUMERIC_DIGIT (isdigit
 * and isnumeric) or LFL_NUMERIC_NUMERIC (isnumeric only) */
enum { LFL_NUMERIC_DECIMAL = 3, LFL_NUMERIC_DIGIT = 2, LFL_NUMERIC_NUMERIC = 1 };
int lfl_pyunicode_numeric(int32_t cp);

/* str.isprintable for one code point: false for the categories Cc, Cf, Cs,
 * Co, Cn, Zl, Zp and Zs (except the ASCII space) */
bool lfl_pyunicode_isprintable(int32_t cp);

#endif
