/* A buffered reader that hands out one record of a text data file at a time
 * without loading the file: JSONL/text lines, the elements of a JSON array
 * (a scanner that respects strings and escapes, so a 2 GB array streams in
 * flat memory) and CSV records (quoted fields may span lines). Returned spans
 * point into the reader's buffer and stay valid until the next call. The
 * byte offset of the next unread record (tell/seek) lets a caller note where
 * a record came from and come back to it. */
#ifndef LFL_IO_LINEREADER_H
#define LFL_IO_LINEREADER_H
#include <stddef.h>
#include <stdint.h>
#include "status.h"

typedef struct lfl_linereader lfl_linereader;

lfl_status lfl_linereader_open(const char *path, lfl_linereader **out);
void lfl_linereader_close(lfl_linereader *r);

/* The next line without its "\n" (and a "\r" before it); *eof = 1 (and no
 * line) at the end of the file. A last line without "\n" is still a line. */
lfl_status lfl_linereader_line(lfl_linereader *r, const char **s, size_t *n, int *eof);

/* The next element of a top-level JSON array, as its raw text (not parsed);
 * *eof = 1 after the closing "]". Errors name the file and the byte offset. */
lfl_status lfl_linereader_json_item(lfl_linereader *r, const char **s, size_t *n, int *eof);

/* The next CSV record (one or more lines: a newline inside a quoted field
 * belongs to the field), without the record's line ending. */
lfl_status lfl_linereader_csv_record(lfl_linereader *r, const char **s, size_t *n, int *eof);

/* Byte offset of the first byte not yet handed out; seek moves there (and
 * resets the JSON array state to "inside the array" when off > 0). */
int64_t lfl_linereader_tell(const lfl_linereader *r);
lfl_status lfl_linereader_seek(lfl_linereader *r, int64_t off);
/* total bytes read from the file so far (for throughput figures) */
int64_t lfl_linereader_bytes_read(const lfl_linereader *r);

#endif
