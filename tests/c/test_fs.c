/* core/fs.c on real folders under a temporary root: every function with names
 * holding spaces, quotes, `$(touch PWNED)`, a newline and UTF-8; mkdir with a
 * file in the way; remove of a tree holding links out of it (the outside
 * survives); atomic write leaving no temporary file and the old content when
 * the write fails (target is a folder; a file-size limit that stops root too);
 * walk over link loops and dangling links; symlink; isatty on a pty; the
 * write probe. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fs.h"

static int passed, failed;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (cond) passed++;                                                  \
        else {                                                               \
            failed++;                                                        \
            printf("FAIL  %s:%d: ", __FILE__, __LINE__);                     \
            printf(__VA_ARGS__);                                             \
            printf("\n");                                                    \
        }                                                                    \
    } while (0)

#define OK(expr) CHECK((expr) == LFL_OK, "%s: %s", #expr, lfl_last_error())

static const char *weird[] = {
    "sp ace", "single'quote", "double\"quote", "$(touch PWNED)", "new\nline", "utf8-\xc3\xbc\xc3\xb1\xc3\xae-\xe6\x97\xa5\xe6\x9c\xac",
    "all 'of \"them\" $(touch PWNED)\n\xc3\xbc`id`;",
};
#define N_WEIRD (sizeof weird / sizeof weird[0])

static char root[256];

static char *P(const char *rel)
{
    static char bufs[8][4096];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, 4096, "%s/%s", root, rel);
    return b;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    fputs(text, f);
    fclose(f);
}

static int is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int exists_nofollow(const char *p)
{
    struct stat sb;
    return lstat(p, &sb) == 0;
}

static int has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

/* the file holds exactly text */
static int content_is(const char *path, const char *text)
{
    char *data;
    size_t n;
    if (lfl_fs_read(path, &data, &n) != LFL_OK) return 0;
    int same = n == strlen(text) && memcmp(data, text, n) == 0;
    free(data);
    return same;
}

/* the folder holds exactly the n names given (sorted by the caller) */
static int listing_is(const char *dir, const char **want, size_t n)
{
    lfl_fs_names got;
    if (lfl_fs_list(dir, &got) != LFL_OK) return 0;
    int same = got.n == n;
    for (size_t i = 0; same && i < n; i++) same = strcmp(got.items[i], want[i]) == 0;
    if (!same) {
        printf("      listing of %s:", dir);
        for (size_t i = 0; i < got.n; i++) printf(" [%s]", got.items[i]);
        printf("\n");
    }
    lfl_fs_names_free(&got);
    return same;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_mkdir(void)
{
    for (size_t i = 0; i < N_WEIRD; i++) {
        char rel[512];
        snprintf(rel, sizeof rel, "mk/%s/deeper/%s/", weird[i], weird[i]);
        OK(lfl_fs_mkdir(P(rel)));
        CHECK(is_dir(P(rel)), "mkdir -p made [%s]", rel);
        OK(lfl_fs_mkdir(P(rel))); /* again: it exists, fine */
    }
    struct stat sb;
    OK(lfl_fs_mkdir(P("mk/mode")));
    CHECK(stat(P("mk/mode"), &sb) == 0 && (sb.st_mode & 0777) == 0755, "mode 0777 & umask 022 = 0755, got %o", sb.st_mode & 0777);
    OK(lfl_fs_mkdir("/"));
    OK(lfl_fs_mkdir(P("mk//double//slash")));
    CHECK(is_dir(P("mk/double/slash")), "repeated slashes");

    put(P("mk/afile"), "x");
    CHECK(lfl_fs_mkdir(P("mk/afile")) != LFL_OK, "mkdir over a file fails");
    CHECK(has(lfl_last_error(), "mkdir '") && has(lfl_last_error(), "mk/afile': exists and is not a directory"), "message: %s", lfl_last_error());
    CHECK(lfl_fs_mkdir(P("mk/afile/sub/x")) != LFL_OK, "mkdir below a file fails");
    CHECK(has(lfl_last_error(), "mk/afile/sub/x': '") && has(lfl_last_error(), "mk/afile' is not a directory"), "message: %s", lfl_last_error());
    CHECK(!exists_nofollow(P("mk/afile/sub")), "nothing made below the file");
    CHECK(lfl_fs_mkdir("") != LFL_OK && has(lfl_last_error(), "empty path"), "empty path: %s", lfl_last_error());
}

static void test_list(void)
{
    OK(lfl_fs_mkdir(P("ls")));
    const char *want[N_WEIRD + 2];
    for (size_t i = 0; i < N_WEIRD; i++) {
        char rel[512];
        snprintf(rel, sizeof rel, "ls/%s", weird[i]);
        put(P(rel), weird[i]);
        want[i] = weird[i];
    }
    OK(lfl_fs_mkdir(P("ls/.hidden dir")));
    want[N_WEIRD] = ".hidden dir";
    qsort(want, N_WEIRD + 1, sizeof *want, cmp);
    CHECK(listing_is(P("ls"), want, N_WEIRD + 1), "list: every name, sorted, no . and ..");
    OK(lfl_fs_mkdir(P("ls_empty")));
    CHECK(listing_is(P("ls_empty"), NULL, 0), "empty folder lists nothing");
    lfl_fs_names got;
    CHECK(lfl_fs_list(P("no such dir"), &got) != LFL_OK, "list of a missing folder fails");
    CHECK(has(lfl_last_error(), "list '") && has(lfl_last_error(), "no such dir': No such file or directory"), "message: %s", lfl_last_error());
    CHECK(lfl_fs_list(P("mk/afile"), &got) != LFL_OK && has(lfl_last_error(), "Not a directory"), "list of a file: %s", lfl_last_error());
}

static void test_write_read(void)
{
    OK(lfl_fs_mkdir(P("wr")));
    for (size_t i = 0; i < N_WEIRD; i++) {
        char rel[512];
        snprintf(rel, sizeof rel, "wr/%s", weird[i]);
        OK(lfl_fs_write(P(rel), weird[i], strlen(weird[i])));
        char *data;
        size_t n;
        OK(lfl_fs_read(P(rel), &data, &n));
        CHECK(n == strlen(weird[i]) && memcmp(data, weird[i], n) == 0 && data[n] == 0, "roundtrip [%s]", weird[i]);
        free(data);
    }
    const char *want[N_WEIRD];
    for (size_t i = 0; i < N_WEIRD; i++) want[i] = weird[i];
    qsort(want, N_WEIRD, sizeof *want, cmp);
    CHECK(listing_is(P("wr"), want, N_WEIRD), "no temporary file left after writes");

    /* binary content, overwrite, empty file, a large file */
    const char bin[] = {'a', 0, 'b', '\n', (char)0xff, 0};
    OK(lfl_fs_write(P("wr/bin"), bin, sizeof bin));
    char *data;
    size_t n;
    OK(lfl_fs_read(P("wr/bin"), &data, &n));
    CHECK(n == sizeof bin && memcmp(data, bin, n) == 0, "binary roundtrip");
    free(data);
    OK(lfl_fs_write(P("wr/bin"), "", 0));
    OK(lfl_fs_read(P("wr/bin"), &data, &n));
    CHECK(data && n == 0 && data[0] == 0, "empty file");
    free(data);
    size_t big = 3u << 20;
    char *blob = malloc(big);
    for (size_t i = 0; i < big; i++) blob[i] = (char)(i * 7 + (i >> 13));
    OK(lfl_fs_write(P("wr/big"), blob, big));
    OK(lfl_fs_read(P("wr/big"), &data, &n));
    CHECK(n == big && memcmp(data, blob, big) == 0, "3 MB roundtrip");
    free(data);
    free(blob);

    /* a new file gets 0666 & umask; an existing file keeps its bits */
    struct stat sb;
    CHECK(stat(P("wr/big"), &sb) == 0 && (sb.st_mode & 0777) == 0644, "new file 0644, got %o", sb.st_mode & 0777);
    chmod(P("wr/bin"), 0600);
    OK(lfl_fs_write(P("wr/bin"), "secret", 6));
    CHECK(stat(P("wr/bin"), &sb) == 0 && (sb.st_mode & 0777) == 0600, "overwrite keeps 0600, got %o", sb.st_mode & 0777);

    /* failure 1: the target is a folder (fails even for root) */
    OK(lfl_fs_mkdir(P("wf/target dir")));
    put(P("wf/target dir/inside"), "keep me");
    CHECK(lfl_fs_write(P("wf/target dir"), "new", 3) != LFL_OK, "write over a folder fails");
    CHECK(has(lfl_last_error(), "write '") && has(lfl_last_error(), "wf/target dir': Is a directory"), "message: %s", lfl_last_error());
    const char *wf[] = {"target dir"};
    CHECK(listing_is(P("wf"), wf, 1), "failed write leaves no temporary file");
    CHECK(content_is(P("wf/target dir/inside"), "keep me"), "the folder is intact");

    /* failure 2: a file-size limit stops write() with EFBIG, root or not */
    put(P("wf/old"), "old content");
    struct rlimit saved, small = {.rlim_cur = 16, .rlim_max = RLIM_INFINITY};
    getrlimit(RLIMIT_FSIZE, &saved);
    small.rlim_max = saved.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &small);
    lfl_status st = lfl_fs_write(P("wf/old"), "new content that is longer than sixteen bytes", 45);
    setrlimit(RLIMIT_FSIZE, &saved);
    CHECK(st != LFL_OK, "write past the file-size limit fails");
    CHECK(has(lfl_last_error(), "wf/old': File too large"), "message: %s", lfl_last_error());
    CHECK(content_is(P("wf/old"), "old content"), "old content intact after a failed write");
    const char *wf2[] = {"old", "target dir"};
    CHECK(listing_is(P("wf"), wf2, 2), "failed write removed its temporary file");

    /* failure 3: the folder is missing */
    CHECK(lfl_fs_write(P("no dir/f"), "x", 1) != LFL_OK && has(lfl_last_error(), "no dir/f': No such file or directory"), "message: %s", lfl_last_error());
    CHECK(lfl_fs_write("", "x", 1) != LFL_OK, "empty path");

    /* a link at the target is replaced, what it pointed to is untouched */
    put(P("wr/pointee"), "pointee");
    symlink(P("wr/pointee"), P("wr/link"));
    OK(lfl_fs_write(P("wr/link"), "replaced", 8));
    CHECK(content_is(P("wr/pointee"), "pointee"), "write replaces a link, not its target");
    CHECK(lstat(P("wr/link"), &sb) == 0 && S_ISREG(sb.st_mode), "the link is now a file");

    CHECK(lfl_fs_read(P("wr/missing"), &data, &n) != LFL_OK, "read of a missing file fails");
    CHECK(has(lfl_last_error(), "read '") && has(lfl_last_error(), "wr/missing': No such file or directory"), "message: %s", lfl_last_error());
    CHECK(lfl_fs_read(P("wr"), &data, &n) != LFL_OK && has(lfl_last_error(), "Is a directory"), "read of a folder: %s", lfl_last_error());
    OK(lfl_fs_read("/proc/self/status", &data, &n)); /* st_size 0: read to the end anyway */
    CHECK(n > 100 && has(data, "Pid:"), "/proc file read whole");
    free(data);
}

static void test_stat(void)
{
    lfl_fs_info in;
    OK(lfl_fs_mkdir(P("st")));
    put(P("st/f'\"$(touch PWNED)"), "12345");
    struct timespec ts[2] = {{1600000000, 0}, {1600000000, 0}};
    utimensat(AT_FDCWD, P("st/f'\"$(touch PWNED)"), ts, 0);
    OK(lfl_fs_stat(P("st/f'\"$(touch PWNED)"), false, &in));
    CHECK(in.kind == LFL_FS_FILE && in.size == 5 && in.mtime == 1600000000, "file: kind %d size %lld mtime %lld", in.kind, (long long)in.size, (long long)in.mtime);
    OK(lfl_fs_stat(P("st"), false, &in));
    CHECK(in.kind == LFL_FS_DIR, "directory");
    symlink("f'\"$(touch PWNED)", P("st/link"));
    OK(lfl_fs_stat(P("st/link"), false, &in));
    CHECK(in.kind == LFL_FS_LINK, "link, not followed");
    OK(lfl_fs_stat(P("st/link"), true, &in));
    CHECK(in.kind == LFL_FS_FILE && in.size == 5, "link followed");
    symlink("nowhere", P("st/dangling"));
    OK(lfl_fs_stat(P("st/dangling"), true, &in));
    CHECK(in.kind == LFL_FS_NONE, "dangling link followed: none");
    OK(lfl_fs_stat(P("st/dangling"), false, &in));
    CHECK(in.kind == LFL_FS_LINK, "dangling link itself");
    OK(lfl_fs_stat(P("st/absent"), true, &in));
    CHECK(in.kind == LFL_FS_NONE, "absent: none, no error");
    OK(lfl_fs_stat(P("st/f'\"$(touch PWNED)/below"), true, &in));
    CHECK(in.kind == LFL_FS_NONE, "below a file: none");
    mkfifo(P("st/fifo"), 0600);
    OK(lfl_fs_stat(P("st/fifo"), true, &in));
    CHECK(in.kind == LFL_FS_OTHER, "fifo: other");
}

static void test_copy(void)
{
    OK(lfl_fs_mkdir(P("cp/into")));
    for (size_t i = 0; i < N_WEIRD; i++) {
        char src[512], dst[512];
        snprintf(src, sizeof src, "%s", P("cp/src"));
        put(src, weird[i]);
        chmod(src, 0750);
        snprintf(dst, sizeof dst, "cp/copy %s", weird[i]);
        OK(lfl_fs_copy(src, P(dst)));
        char *data;
        size_t n;
        OK(lfl_fs_read(P(dst), &data, &n));
        CHECK(n == strlen(weird[i]) && memcmp(data, weird[i], n) == 0, "copy content [%s]", weird[i]);
        free(data);
        struct stat sb;
        CHECK(stat(P(dst), &sb) == 0 && (sb.st_mode & 07777) == 0750, "copy keeps mode 0750, got %o", sb.st_mode & 07777);
    }
    /* into a folder under the source's base name */
    char src[512];
    snprintf(src, sizeof src, "%s", P("cp/tokenizer 'x'.json"));
    put(src, "{}");
    OK(lfl_fs_copy(src, P("cp/into")));
    const char *want[] = {"tokenizer 'x'.json"};
    CHECK(listing_is(P("cp/into"), want, 1), "copy into a folder, no temporary file");
    OK(lfl_fs_copy(src, P("cp/into/")));
    CHECK(listing_is(P("cp/into"), want, 1), "copy into folder/ overwrites");
    CHECK(lfl_fs_copy(P("cp/none"), P("cp/x")) != LFL_OK && has(lfl_last_error(), "copy '") && has(lfl_last_error(), "cp/none': No such file or directory"), "missing source: %s", lfl_last_error());
    CHECK(lfl_fs_copy(P("cp/into"), P("cp/x")) != LFL_OK && has(lfl_last_error(), "not a regular file"), "folder source: %s", lfl_last_error());
    CHECK(lfl_fs_copy(src, P("cp/no dir/x")) != LFL_OK && has(lfl_last_error(), "copy to '") && has(lfl_last_error(), "No such file or directory"), "missing target folder: %s", lfl_last_error());
    CHECK(!exists_nofollow(P("cp/x")), "failed copies leave nothing");
}

static void test_remove(void)
{
    /* outside the tree: a folder and a file the tree links to */
    OK(lfl_fs_mkdir(P("outside/sub")));
    put(P("outside/sub/precious"), "keep");
    put(P("outside/file"), "keep");
    OK(lfl_fs_mkdir(P("rm/tree/a b/c'd")));
    for (size_t i = 0; i < N_WEIRD; i++) {
        char rel[512];
        snprintf(rel, sizeof rel, "rm/tree/a b/%s", weird[i]);
        put(P(rel), "x");
        snprintf(rel, sizeof rel, "rm/tree/a b/c'd/%s", weird[i]);
        OK(lfl_fs_mkdir(P(rel)));
    }
    symlink(P("outside"), P("rm/tree/link to outside"));
    symlink(P("outside/sub"), P("rm/tree/a b/c'd/deep link"));
    symlink(P("outside/file"), P("rm/tree/file link"));
    symlink("nowhere", P("rm/tree/dangling"));
    chmod(P("rm/tree/a b/c'd"), 0500); /* no write bit: root still removes; others would fail */
    bool removed = false;
    if (geteuid() == 0) {
        OK(lfl_fs_remove(P("rm/tree"), &removed));
        CHECK(removed && !exists_nofollow(P("rm/tree")), "tree removed");
    } else {
        chmod(P("rm/tree/a b/c'd"), 0700);
        OK(lfl_fs_remove(P("rm/tree"), &removed));
        CHECK(removed && !exists_nofollow(P("rm/tree")), "tree removed");
    }
    CHECK(content_is(P("outside/sub/precious"), "keep"), "the folder linked from the tree survives");
    CHECK(exists_nofollow(P("outside/file")), "the file linked from the tree survives");

    OK(lfl_fs_remove(P("rm/tree"), &removed));
    CHECK(!removed, "absent: no error, nothing removed");
    OK(lfl_fs_remove(P("rm/missing/deeper"), &removed));
    CHECK(!removed, "absent parent: no error");
    OK(lfl_fs_remove(P("outside/file/below"), &removed));
    CHECK(!removed, "below a file: no error");
    OK(lfl_fs_remove(P("rm/tree"), NULL));

    /* a link to a folder, named with and without a slash: the link goes */
    symlink(P("outside"), P("rm/link"));
    OK(lfl_fs_remove(P("rm/link/"), &removed));
    CHECK(removed && !exists_nofollow(P("rm/link")) && exists_nofollow(P("outside/sub/precious")), "link/ removes the link only");
    symlink(P("outside"), P("rm/link"));
    OK(lfl_fs_remove(P("rm/link"), &removed));
    CHECK(removed && !exists_nofollow(P("rm/link")) && exists_nofollow(P("outside/sub/precious")), "link removes the link only");

    put(P("rm/$(touch PWNED)"), "x");
    OK(lfl_fs_remove(P("rm/$(touch PWNED)"), &removed));
    CHECK(removed && !exists_nofollow(P("rm/$(touch PWNED)")), "a file");
    OK(lfl_fs_mkdir(P("rm/d")));
    OK(lfl_fs_remove(P("rm/d/"), &removed));
    CHECK(removed && !exists_nofollow(P("rm/d")), "a folder named with a trailing slash");

    CHECK(lfl_fs_remove("/", NULL) != LFL_OK && has(lfl_last_error(), "root"), "refuses /: %s", lfl_last_error());
    CHECK(lfl_fs_remove("//", NULL) != LFL_OK, "refuses //");
    CHECK(lfl_fs_remove(".", NULL) != LFL_OK && has(lfl_last_error(), "'.' or '..'"), "refuses .");
    CHECK(lfl_fs_remove(P("rm/.."), NULL) != LFL_OK, "refuses x/..");
    CHECK(lfl_fs_remove("", NULL) != LFL_OK, "refuses empty");
    CHECK(exists_nofollow(P("rm")), "rm/ still there after the refusals");
}

static void test_walk(void)
{
    OK(lfl_fs_mkdir(P("wk/a/b")));
    OK(lfl_fs_mkdir(P("wk_out/inner")));
    put(P("wk/top"), "1");
    put(P("wk/a/it's \"x\""), "2");
    put(P("wk/a/b/$(touch PWNED)\nz"), "3");
    put(P("wk_out/inner/o"), "4");
    symlink("../top", P("wk/a/top link"));            /* link to a file: listed */
    OK(lfl_fs_symlink(P("wk_out"), P("wk/a/out")));   /* link to a folder: walked */
    symlink("..", P("wk/a/b/loop"));                   /* back to an ancestor: skipped */
    symlink(P("wk"), P("wk/a/b/root loop"));           /* back to the root: skipped */
    symlink("nowhere", P("wk/dangling"));              /* skipped */
    symlink("self", P("wk/self"));                     /* ELOOP: skipped */
    OK(lfl_fs_mkdir(P("wk/empty dir")));
    CHECK(lfl_fs_symlink("x", P("wk/top")) != LFL_OK && has(lfl_last_error(), "wk/top' -> 'x': File exists"), "symlink over a file: %s", lfl_last_error());
    char target[64];
    CHECK(readlink(P("wk/a/out"), target, sizeof target) > 0, "symlink made a link");
    lfl_fs_names got;
    OK(lfl_fs_walk(P("wk"), &got));
    const char *want[] = {"a/b/$(touch PWNED)\nz", "a/it's \"x\"", "a/out/inner/o", "a/top link", "top"};
    int same = got.n == 5;
    for (size_t i = 0; same && i < 5; i++) same = strcmp(got.items[i], want[i]) == 0;
    CHECK(same, "walk: regular files, links followed, loops skipped, sorted (%zu paths)", got.n);
    if (!same)
        for (size_t i = 0; i < got.n; i++) printf("      [%s]\n", got.items[i]);
    lfl_fs_names_free(&got);
    /* walking through a link to the root */
    symlink(P("wk"), P("wk link"));
    OK(lfl_fs_walk(P("wk link"), &got));
    CHECK(got.n == 5, "walk of a link to a folder");
    lfl_fs_names_free(&got);
    CHECK(lfl_fs_walk(P("wk missing"), &got) != LFL_OK && has(lfl_last_error(), "walk '") && has(lfl_last_error(), "wk missing': No such file or directory"), "missing: %s", lfl_last_error());
    CHECK(lfl_fs_walk(P("wk/top"), &got) != LFL_OK && has(lfl_last_error(), "Not a directory"), "file: %s", lfl_last_error());
}

static void test_isatty(void)
{
    int fds[2];
    if (pipe(fds) == 0) {
        CHECK(!lfl_fs_isatty(fds[0]) && !lfl_fs_isatty(fds[1]), "a pipe is no tty");
        close(fds[0]);
        close(fds[1]);
    }
    CHECK(!lfl_fs_isatty(-1) && !lfl_fs_isatty(999), "bad fds are no tty");
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0) {
        int s = open(ptsname(m), O_RDWR | O_NOCTTY);
        CHECK(s >= 0 && lfl_fs_isatty(s), "a pty is a tty");
        if (s >= 0) close(s);
    } else {
        printf("SKIP  isatty on a pty: no /dev/ptmx here\n");
    }
    if (m >= 0) close(m);
}

static void test_writable_dir(void)
{
    OK(lfl_fs_writable_dir(P("wd/new 'out' $(touch PWNED)\n/x"), "output_dir"));
    CHECK(is_dir(P("wd/new 'out' $(touch PWNED)\n/x")), "probe made the folder");
    CHECK(listing_is(P("wd/new 'out' $(touch PWNED)\n/x"), NULL, 0), "probe file removed");
    OK(lfl_fs_writable_dir(P("wd/new 'out' $(touch PWNED)\n/x"), NULL)); /* exists: fine */
    put(P("wd/file"), "x");
    char want[4200];
    CHECK(lfl_fs_writable_dir(P("wd/file/out"), "output_dir") != LFL_OK, "a file in the way");
    snprintf(want, sizeof want, "output_dir '%s': '%s' is not a directory", P("wd/file/out"), P("wd/file"));
    CHECK(strcmp(lfl_last_error(), want) == 0, "message: %s", lfl_last_error());
    CHECK(lfl_fs_writable_dir(P("wd/file"), NULL) != LFL_OK, "the path is a file");
    snprintf(want, sizeof want, "folder '%s': exists and is not a directory", P("wd/file"));
    CHECK(strcmp(lfl_last_error(), want) == 0, "message: %s", lfl_last_error());
    if (geteuid() != 0) {
        OK(lfl_fs_mkdir(P("wd/ro")));
        chmod(P("wd/ro"), 0555);
        CHECK(lfl_fs_writable_dir(P("wd/ro"), "output_dir") != LFL_OK, "read-only folder");
        snprintf(want, sizeof want, "output_dir '%s': Permission denied", P("wd/ro"));
        CHECK(strcmp(lfl_last_error(), want) == 0, "message: %s", lfl_last_error());
        chmod(P("wd/ro"), 0755);
    }
    /* a folder no one can create files in, root included */
    CHECK(lfl_fs_writable_dir("/proc", "output_dir") != LFL_OK && has(lfl_last_error(), "output_dir '/proc': "), "/proc: %s", lfl_last_error());
}

int main(void)
{
    umask(022);
    snprintf(root, sizeof root, "/tmp/lfl_test_fs_XXXXXX");
    if (!mkdtemp(root)) { perror("mkdtemp"); return 2; }
    test_mkdir();
    test_list();
    test_write_read();
    test_stat();
    test_copy();
    test_remove();
    test_walk();
    test_isatty();
    test_writable_dir();
    /* nothing ever ran the names as shell */
    CHECK(access("PWNED", F_OK) != 0 && access(P("PWNED"), F_OK) != 0, "no PWNED file anywhere");
    bool removed;
    OK(lfl_fs_remove(root, &removed));
    CHECK(removed && access(root, F_OK) != 0, "the test root removed");
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
