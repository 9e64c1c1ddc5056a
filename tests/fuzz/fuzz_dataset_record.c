/* Fuzz target: dataset files record by record. The first input byte picks the
 * file type (jsonl, json, csv, txt) and how records are aligned; the rest is
 * the file. In C, the line reader (core/io/linereader.c) hands out every
 * line, JSON array element and CSV record, each inside the file and the
 * offsets (tell) moving forward, and seeking back to a noted record gives it
 * again; then the Lua harness dataset.lua reads the file as lfl.data does
 * (streamed and in memory) and aligns every record (alpaca, sharegpt,
 * openai; plain, ranking, KTO) and encodes the examples kept with a chat
 * template and a tokenizer, as training does. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "io/linereader.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init();
    fuzz_lua();
    return 0;
}

static void bug(const char *what)
{
    fprintf(stderr, "fuzz_dataset_record: %s\n", what);
    abort();
}

typedef lfl_status (*next_fn)(lfl_linereader *, const char **, size_t *, int *);

static void read_all(const char *path, const uint8_t *data, size_t size, next_fn next)
{
    lfl_linereader *r = NULL;
    if (lfl_linereader_open(path, &r) != LFL_OK) {
        fuzz_check_error(path);
        return;
    }
    int64_t last = 0, second_at = -1;
    size_t second_n = 0;
    char *second = NULL;
    for (int k = 0;; k++) {
        int64_t at = lfl_linereader_tell(r);
        if (at < last || at > (int64_t)size) bug("tell() moved backwards or past the end");
        last = at;
        const char *s;
        size_t n;
        int eof = 0;
        if (next(r, &s, &n, &eof) != LFL_OK) {
            fuzz_check_error(path);
            break;
        }
        if (eof) break;
        if (n > size) bug("a record longer than the file");
        /* a record is bytes of the file (a reader never makes text up) */
        if (n && !memmem(data, size, s, n)) bug("a record that is not in the file");
        if (k == 1) {
            second_at = at;
            second = malloc(n + 1);
            memcpy(second, s, n);
            second_n = n;
        }
    }
    if (second && next != lfl_linereader_json_item) {
        /* seeking back to a record's offset gives the same record again (for
         * JSON arrays seek restarts "inside the array", which a record's
         * offset after a separator does not always match) */
        const char *s;
        size_t n;
        int eof = 0;
        if (lfl_linereader_seek(r, second_at) != LFL_OK) bug("cannot seek back to a record");
        if (next(r, &s, &n, &eof) != LFL_OK || eof || n != second_n || memcmp(s, second, n) != 0)
            bug("seeking back to a record gives another one");
    }
    free(second);
    lfl_linereader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const char *exts[] = {".jsonl", ".json", ".csv", ".txt"};
    int kind = data[0] & 3;
    const char *path = fuzz_scratch(data + 1, size - 1, exts[kind]);
    next_fn fns[] = {lfl_linereader_line, lfl_linereader_json_item, lfl_linereader_csv_record, lfl_linereader_line};
    read_all(path, data + 1, size - 1, fns[kind]);
    fuzz_lua_run("dataset", data, size, path);
    return 0;
}
