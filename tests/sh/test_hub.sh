#!/usr/bin/env bash
# The Hub client against a mock Hub (tests/hub/mock_hub.py) on 127.0.0.1:
# downloads, the cache layout, cache hits without network, offline mode,
# resume, redirects without the token, checksums, errors, concurrent processes;
# uploads (upload_folder, faults, lfl export with export_hub_model_id).
# usage: bash tests/sh/test_hub.sh path/to/lfl
set -u
LFL=$(readlink -f "${1:?usage: test_hub.sh path/to/lfl}")
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/lfl-hub-test.XXXXXX")
MOCK_PID=""
cleanup() {
  if [ -n "$MOCK_PID" ]; then kill "$MOCK_PID" 2>/dev/null; wait "$MOCK_PID" 2>/dev/null; fi
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LARGE=3000000
python3 "$ROOT/tests/hub/mock_hub.py" --port-file "$T/ports" --large-size $LARGE --lifetime 240 &
MOCK_PID=$!
for _ in $(seq 100); do [ -s "$T/ports" ] && break; sleep 0.1; done
[ -s "$T/ports" ] || { echo "mock hub did not start"; echo "0 passed, 1 failed"; exit 1; }
read -r HUB CDN <"$T/ports"

# a port with nothing listening, for "no network"
DEAD=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')

unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_TOKEN_PATH HF_HUB_OFFLINE TRANSFORMERS_OFFLINE HF_HUB_CACHE \
      HUGGINGFACE_HUB_CACHE XDG_CACHE_HOME LFL_HUB_RETRIES
export HF_ENDPOINT="http://127.0.0.1:$HUB"
export NO_PROXY=127.0.0.1 no_proxy=127.0.0.1 HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_DISABLE_XET=1
export LFL_HUB_BACKOFF=0.05
REPO_DIR=models--lfl-test--tiny-model
MAIN=$(python3 -c 'import hashlib; print(hashlib.sha1(b"main").hexdigest())')
PR1=$(python3 -c 'import hashlib; print(hashlib.sha1(b"pr1").hexdigest())')

ctl() { python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode().strip())' \
          "http://127.0.0.1:$HUB/$1"; }
lfl() { timeout 60 "$LFL" "$@"; }
fresh_home() { export HF_HOME="$T/home.$1"; rm -rf "$HF_HOME"; }
fail() { echo "FAIL: $*"; exit 1; }
expect_eq() { [ "$1" = "$2" ] || fail "${3:-value}: expected '$2', got '$1'"; }
expect_in() { case "$1" in *"$2"*) ;; *) fail "'$2' not in: $1" ;; esac; }
large_sha() { python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$1"; }
LARGE_SHA=""  # set by the first download

passed=0 failed=0
run() {
  local name=$1
  ctl _reset >/dev/null
  local t0=$SECONDS
  if (set -e; "$name") >"$T/log" 2>&1; then
    passed=$((passed + 1)); echo "ok   $name ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); echo "FAIL $name"; sed 's/^/     /' "$T/log" | tail -25
  fi
}

t_sha256_vectors() {
  python3 - "$T/sha" <<'EOF'
import hashlib, os, random, sys
d = sys.argv[1]; os.makedirs(d, exist_ok=True)
r = random.Random(7)
with open(d + "/expect", "w") as f:
    for n in [0, 1, 3, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 1 << 20, 3 * (1 << 20) + 17]:
        b = b"abc" if n == 3 else r.randbytes(n)
        open("%s/f%d" % (d, n), "wb").write(b)
        f.write("%s/f%d %s\n" % (d, n, hashlib.sha256(b).hexdigest()))
EOF
  while read -r f h; do
    expect_eq "$(lfl -e "io.write(lfl.hub.sha256('$f'))")" "$h" "sha256 of $f"
  done <"$T/sha/expect"
  expect_eq "$(lfl -e "io.write(lfl.hub.sha256('$T/sha/f3'))")" \
    ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad "FIPS 180 'abc'"
}

t_patterns() {
  local out
  out=$(lfl -e '
    local m = lfl.hub.match
    assert(m("sub/dir/notes.txt", "*.txt"), "* crosses /")
    assert(not m("config.json", {"*.bin", "*.safetensors"}))
    assert(m("sub/dir/notes.txt", "sub/"), "a folder pattern")
    assert(not m("model.safetensors", nil, "*.safetensors"), "ignore")
    assert(not m("a.json", "*.json", {"a.*"}), "ignore wins over allow")
    assert(m("a[1].json", "a[[]1].json"), "brackets")
    assert(m("x.json", nil, nil), "no patterns: all")
    print("patterns ok")')
  expect_eq "$out" "patterns ok"
}

t_fresh_snapshot() {
  fresh_home fresh
  local p
  p=$(lfl download lfl-test/tiny-model)
  expect_eq "$p" "$HF_HOME/hub/$REPO_DIR/snapshots/$MAIN" "snapshot path"
  expect_eq "$(cat "$HF_HOME/hub/$REPO_DIR/refs/main")" "$MAIN" "refs/main"
  [ "$(wc -c <"$HF_HOME/hub/$REPO_DIR/refs/main")" -eq 40 ] || fail "refs/main has a newline"
  expect_eq "$(find "$p" -type l | wc -l)" 6 "6 files"
  expect_eq "$(readlink "$p/config.json" | cut -c1-12)" "../../blobs/" "relative symlink"
  expect_eq "$(readlink "$p/sub/dir/notes.txt" | cut -c1-18)" "../../../../blobs/" "nested relative symlink"
  expect_in "$(cat "$p/config.json")" '"hidden_size": 8'
  expect_eq "$(cat "$p/with space+plus.txt")" "a name that needs percent-encoding"
  local etag
  etag=$(basename "$(readlink "$p/model.safetensors")")
  expect_eq "$(large_sha "$p/model.safetensors")" "$etag" "the LFS blob is named by its sha256"
  expect_eq "$(stat -L -c %s "$p/model.safetensors")" $LARGE "size"
  [ -z "$(find "$HF_HOME" -name '*.incomplete')" ] || fail ".incomplete left behind"
  expect_eq "$(ctl '_count?server=cdn&method=GET')" 2 "two LFS files from the cdn"
}

t_cache_hit() {
  fresh_home hit
  local p1 p2
  p1=$(lfl download lfl-test/tiny-model)
  ctl _reset >/dev/null
  p2=$(lfl download lfl-test/tiny-model)
  expect_eq "$p2" "$p1"
  expect_eq "$(ctl '_count?contains=/resolve/')" 0 "no resolve requests on a cache hit"
  expect_eq "$(ctl '_count?server=cdn')" 0 "no cdn requests on a cache hit"
  # a commit revision with the file cached needs no request at all
  p2=$(lfl download lfl-test/tiny-model config.json --revision "$MAIN")
  expect_eq "$p2" "$p1/config.json"
  expect_eq "$(ctl '_count?contains=/resolve/')" 0
}

t_cache_hit_no_network() {
  fresh_home nonet
  local p1 p2 err
  p1=$(lfl download lfl-test/tiny-model)
  p2=$(HF_ENDPOINT="http://127.0.0.1:$DEAD" lfl download lfl-test/tiny-model 2>"$T/err") || fail "$(cat "$T/err")"
  expect_eq "$p2" "$p1" "snapshot from the cache"
  expect_in "$(cat "$T/err")" "using the cached copy"
  p2=$(HF_ENDPOINT="http://127.0.0.1:$DEAD" lfl download lfl-test/tiny-model sub/dir/notes.txt 2>/dev/null)
  expect_eq "$p2" "$p1/sub/dir/notes.txt" "file from the cache"
  # not cached: a clear error naming the endpoint
  err=$(HF_ENDPOINT="http://127.0.0.1:$DEAD" lfl download lfl-test/tiny-data --repo-type dataset 2>&1) && fail "should fail"
  expect_in "$err" "cannot reach http://127.0.0.1:$DEAD"
  expect_in "$err" "lfl-test/tiny-data"
}

t_offline() {
  fresh_home offline
  local p1 p2 err
  p1=$(lfl download lfl-test/tiny-model --include '*.json')
  ctl _reset >/dev/null
  p2=$(HF_HUB_OFFLINE=1 lfl download lfl-test/tiny-model)
  expect_eq "$p2" "$p1"
  p2=$(HF_HUB_OFFLINE=1 lfl download lfl-test/tiny-model config.json)
  expect_eq "$p2" "$p1/config.json"
  p2=$(HF_HUB_OFFLINE=1 lfl -e "io.write(lfl.hub.download('lfl-test/tiny-model', {filename='tokenizer.json'}))")
  expect_eq "$p2" "$p1/tokenizer.json"
  err=$(HF_HUB_OFFLINE=1 lfl download lfl-test/tiny-model model.safetensors 2>&1) && fail "uncached file offline"
  expect_in "$err" "file 'model.safetensors'"
  expect_in "$err" "HF_HUB_OFFLINE=1"
  err=$(HF_HUB_OFFLINE=1 lfl download lfl-test/tiny-data --repo-type dataset 2>&1) && fail "uncached repo offline"
  expect_in "$err" "dataset lfl-test/tiny-data"
  expect_in "$err" "HF_HUB_OFFLINE=1"
  err=$(HF_HUB_OFFLINE=1 lfl download lfl-test/tiny-model --include '*.safetensors' 2>&1) && fail "no matching cached file"
  expect_in "$err" "no file matching"
  expect_eq "$(ctl '_count')" 0 "offline mode made requests"
}

t_patterns_and_revisions() {
  fresh_home pat
  local p
  p=$(lfl download lfl-test/tiny-model --include '*.json' 'sub/')
  expect_eq "$(cd "$p" && find . -type l | sort | tr '\n' ' ')" "./config.json ./sub/dir/notes.txt ./tokenizer.json " "included files"
  p=$(lfl download lfl-test/tiny-model --exclude '*.safetensors' '*.bin' 'sub/*' '* *')
  expect_eq "$(cd "$p" && find . -type l | sort | tr '\n' ' ')" "./config.json ./sub/dir/notes.txt ./tokenizer.json " "excluded files"
  p=$(lfl download lfl-test/tiny-model config.json --revision refs/pr/1)
  expect_eq "$p" "$HF_HOME/hub/$REPO_DIR/snapshots/$PR1/config.json"
  expect_in "$(cat "$p")" '"hidden_size": 16'
  expect_eq "$(cat "$HF_HOME/hub/$REPO_DIR/refs/refs/pr/1")" "$PR1" "refs/refs/pr/1"
  p=$(lfl download lfl-test/tiny-model config.json --revision v1.0)
  expect_eq "$p" "$HF_HOME/hub/$REPO_DIR/snapshots/$MAIN/config.json"
  p=$(lfl download lfl-test/tiny-data --repo-type dataset)
  expect_eq "$(cat "$p/data/train.jsonl" | wc -l)" 3
  expect_eq "$(basename "$(dirname "$(dirname "$p")")")" datasets--lfl-test--tiny-data
}

t_resume_in_run() {
  fresh_home resume1
  ctl '_fault?drop_after=1000000&drop_count=1' >/dev/null
  local p
  p=$(lfl download lfl-test/tiny-model model.safetensors)
  LARGE_SHA=$(basename "$(readlink "$p")")
  expect_eq "$(large_sha "$p")" "$LARGE_SHA"
  expect_eq "$(ctl '_count?server=cdn&method=GET')" 2 "one cut GET and one resumed"
  expect_eq "$(ctl '_ranges?server=cdn&range=1')" "bytes=1000000-" "resumed with Range"
}

t_resume_across_runs() {
  fresh_home resume2
  ctl '_fault?drop_after=1000000&drop_count=1' >/dev/null
  local err p blobs
  err=$(LFL_HUB_RETRIES=0 lfl download lfl-test/tiny-model model.safetensors 2>&1) && fail "should fail without retries"
  expect_in "$err" "partial file kept"
  expect_in "$err" "file 'model.safetensors'"
  blobs="$HF_HOME/hub/$REPO_DIR/blobs"
  expect_eq "$(stat -c %s "$blobs"/*.incomplete)" 1000000 "partial file"
  ctl _reset >/dev/null
  p=$(lfl download lfl-test/tiny-model model.safetensors)
  expect_eq "$(large_sha "$p")" "$(basename "$(readlink "$p")")"
  expect_eq "$(ctl '_ranges?server=cdn')" "bytes=1000000-" "the next run resumed"
  [ -z "$(find "$HF_HOME" -name '*.incomplete')" ] || fail ".incomplete left behind"
  # a partial file from another tool (same name as huggingface_hub <= 1.x writes)
  fresh_home resume3
  local sha
  sha=$(basename "$(readlink "$p")")
  mkdir -p "$HF_HOME/hub/$REPO_DIR/blobs"
  head -c 1500000 "$p" >"$HF_HOME/hub/$REPO_DIR/blobs/$sha.incomplete"
  ctl _reset >/dev/null
  p=$(lfl download lfl-test/tiny-model model.safetensors)
  expect_eq "$(large_sha "$p")" "$sha"
  expect_eq "$(ctl '_ranges?server=cdn')" "bytes=1500000-"
  # a server that ignores Range: the file starts over and still verifies
  fresh_home resume4
  mkdir -p "$HF_HOME/hub/$REPO_DIR/blobs"
  head -c 700000 "$p" >"$HF_HOME/hub/$REPO_DIR/blobs/$sha.incomplete"
  ctl '_fault?ignore_range=1' >/dev/null
  p=$(lfl download lfl-test/tiny-model model.safetensors)
  expect_eq "$(large_sha "$p")" "$sha"
}

t_redirect_no_token_leak() {
  fresh_home token
  local p
  p=$(HF_TOKEN=hf_valid_token lfl download lfl-test/tiny-model --include '*.safetensors' 'config.json')
  expect_eq "$(large_sha "$p/model.safetensors")" "$(basename "$(readlink "$p/model.safetensors")")"
  expect_eq "$(ctl '_count?server=cdn')" 1 "cdn requests"
  expect_eq "$(ctl '_count?server=cdn&auth=1')" 0 "Authorization sent to the cdn host"
  [ "$(ctl '_count?server=hub&auth=1')" -ge 3 ] || fail "the token did not reach the hub"
  expect_eq "$(ctl '_count?server=hub&auth=0')" 0 "a hub request without the token"
  expect_in "$(ctl '_stats?server=hub')" '"auth": "Bearer hf_valid_token"'
  # token=false sends none
  fresh_home token2
  ctl _reset >/dev/null
  HF_TOKEN=hf_valid_token lfl -e "lfl.hub.download('lfl-test/tiny-model', {filename='config.json', token=false})" >/dev/null
  expect_eq "$(ctl '_count?auth=1')" 0 "token=false"
}

t_checksum_mismatch() {
  fresh_home corrupt
  ctl '_fault?corrupt=1' >/dev/null
  local err blobs
  err=$(lfl download lfl-test/tiny-model model.safetensors 2>&1) && fail "a corrupt download was accepted"
  expect_in "$err" "sha256 mismatch"
  expect_in "$err" "file 'model.safetensors'"
  expect_in "$err" "revision 'main'"
  blobs="$HF_HOME/hub/$REPO_DIR/blobs"
  [ -z "$(ls -A "$blobs")" ] || fail "bad data kept: $(ls "$blobs")"
  [ ! -e "$HF_HOME/hub/$REPO_DIR/snapshots/$MAIN/model.safetensors" ] || fail "pointer to a bad blob"
  ctl '_fault?corrupt=0' >/dev/null
  local p
  p=$(lfl download lfl-test/tiny-model model.safetensors)
  expect_eq "$(large_sha "$p")" "$(basename "$(readlink "$p")")"
}

# a body longer than the file (an endless reply, or a Content-Length past the
# Hub's size) is cut off at the file's size, nothing of it is kept, and the
# error names the file and the size; an endless error page is cut and retried
t_oversize() {
  fresh_home oversize_ref
  local p size err blobs sent
  p=$(lfl download lfl-test/tiny-model config.json)
  size=$(wc -c <"$p")
  fresh_home oversize
  blobs="$HF_HOME/hub/$REPO_DIR/blobs"
  ctl '_fault?endless=1' >/dev/null
  err=$(lfl download lfl-test/tiny-model config.json 2>&1) && fail "an endless reply was accepted"
  expect_in "$err" "model lfl-test/tiny-model, file 'config.json', revision 'main'"
  expect_in "$err" "the download is larger than the $size bytes the file has"
  expect_in "$err" "(http://127.0.0.1:$HUB/lfl-test/tiny-model/resolve/main/config.json sent more than $size bytes: transfer stopped)"
  expect_in "$err" "the partial file was deleted"
  [ -z "$(ls -A "$blobs")" ] || fail "partial data kept: $(ls "$blobs")"
  [ ! -e "$HF_HOME/hub/$REPO_DIR/snapshots/$MAIN/config.json" ] || fail "a pointer to nothing"
  sent=$(ctl _sent)
  [ "$sent" -lt 30000000 ] || fail "the endless reply ran on for $sent bytes"
  # the LFS blob from the cdn, whose size is X-Linked-Size
  err=$(lfl download lfl-test/tiny-model model.safetensors 2>&1) && fail "an endless cdn reply was accepted"
  expect_in "$err" "file 'model.safetensors'"
  expect_in "$err" "larger than the $LARGE bytes the file has"
  expect_in "$err" "http://127.0.0.1:$CDN/cdn/"
  case "$err" in *sig=mock*) fail "the signed query is in the message: $err" ;; esac
  [ -z "$(ls -A "$blobs")" ] || fail "partial data kept: $(ls "$blobs")"
  # a declared Content-Length past the Hub's size
  ctl _reset >/dev/null
  ctl '_fault?oversize_cl=5000000' >/dev/null
  err=$(lfl download lfl-test/tiny-model config.json 2>&1) && fail "an oversized reply was accepted"
  expect_in "$err" "larger than the $size bytes the file has"
  [ -z "$(ls -A "$blobs")" ] || fail "partial data kept: $(ls "$blobs")"
  # an error page without end: its first bytes, then the usual retry
  ctl _reset >/dev/null
  ctl '_fault?endless_error=1' >/dev/null
  p=$(lfl download lfl-test/tiny-model config.json) || fail "no retry after an endless error page"
  expect_eq "$(wc -c <"$p")" "$size" "config.json after the retry"
  expect_eq "$(ctl '_count?method=GET&contains=/resolve/main/config.json')" 2 "GETs of config.json"
  sent=$(ctl _sent)
  [ "$sent" -lt 30000000 ] || fail "the endless error page ran on for $sent bytes"
  # an API answer without end stops at its 256 MB cap
  ctl _reset >/dev/null
  ctl '_fault?endless_api=1' >/dev/null
  err=$(lfl download lfl-test/tiny-model 2>&1) && fail "an endless API answer was accepted"
  expect_in "$err" "the answer from http://127.0.0.1:$HUB/api/models/lfl-test/tiny-model/revision/main"
  expect_in "$err" "is larger than 268435456 bytes: transfer stopped"
  sent=$(ctl _sent)
  [ "$sent" -lt 300000000 ] || fail "the endless API answer ran on for $sent bytes"
  # with the faults gone the files download as usual
  ctl _reset >/dev/null
  p=$(lfl download lfl-test/tiny-model model.safetensors)
  expect_eq "$(large_sha "$p")" "$(basename "$(readlink "$p")")"
}

t_errors() {
  fresh_home errors
  local err
  err=$(lfl download lfl-test/gated-model config.json 2>&1) && fail "gated without a token"
  expect_in "$err" "model lfl-test/gated-model, file 'config.json', revision 'main'"
  expect_in "$err" "HTTP 401"
  expect_in "$err" "gated"
  expect_in "$err" "accept its license"
  expect_in "$err" "HF_TOKEN"
  err=$(HF_TOKEN=hf_wrong lfl download lfl-test/gated-model config.json 2>&1) && fail "gated with a wrong token"
  expect_in "$err" "HTTP 403"
  expect_in "$err" "HF_TOKEN"
  # the token from $HF_HOME/token
  mkdir -p "$HF_HOME" && printf 'hf_valid_token\n' >"$HF_HOME/token"
  lfl download lfl-test/gated-model >/dev/null || fail "gated with the token file"
  rm "$HF_HOME/token"
  err=$(lfl download lfl-test/tiny-model nope.json 2>&1) && fail "missing file"
  expect_in "$err" "model lfl-test/tiny-model, file 'nope.json', revision 'main'"
  expect_in "$err" "HTTP 404"
  expect_in "$err" "file not found"
  [ -e "$HF_HOME/hub/$REPO_DIR/.no_exist/$MAIN/nope.json" ] || fail "no .no_exist marker"
  err=$(HF_HUB_OFFLINE=1 lfl download lfl-test/tiny-model nope.json 2>&1) && fail "missing file offline"
  expect_in "$err" "file not found"
  err=$(lfl download lfl-test/tiny-model config.json --revision nobranch 2>&1) && fail "missing revision"
  expect_in "$err" "revision 'nobranch'"
  expect_in "$err" "HTTP 404"
  expect_in "$err" "revision not found"
  err=$(lfl download lfl-test/no-such-repo 2>&1) && fail "missing repo"
  expect_in "$err" "model lfl-test/no-such-repo"
  expect_in "$err" "HTTP 401"
  expect_in "$err" "repository not found"
  # the cdn's own errors name the host, not the Hub's token advice
  ctl '_fault?cdn_status=403&cdn_status_count=1' >/dev/null
  err=$(lfl download lfl-test/tiny-model model.safetensors 2>&1) && fail "cdn 403"
  expect_in "$err" "the download host http://127.0.0.1:$CDN answered HTTP 403"
  ctl '_fault?cdn_status=503&cdn_status_count=2' >/dev/null
  lfl download lfl-test/tiny-model model.safetensors >/dev/null || fail "cdn 503 was not retried"
  err=$(lfl download ../etc 2>&1) && fail "bad repo id"
  expect_in "$err" "not a valid repo id"
  err=$(lfl -e "lfl.hub.download('lfl-test/tiny-model', {revison='main'})" 2>&1) && fail "unknown option"
  expect_in "$err" "unknown option 'revison'"
}

t_retries_and_renames() {
  fresh_home retry
  ctl '_fault?fail500=2&fail500_api=1' >/dev/null
  local p
  p=$(lfl download lfl-test/tiny-model --include config.json)
  expect_in "$(cat "$p/config.json")" "hidden_size"
  expect_eq "$(ctl '_count?contains=/api/')" 2 "the API call was retried"
  # a renamed repo answers with a relative redirect, which the metadata step follows
  p=$(lfl download lfl-test/old-name config.json)
  expect_in "$(cat "$p")" '"hidden_size": 8'
  # siblings missing from the revision API: the paginated tree listing is used
  fresh_home tree
  ctl '_reset' >/dev/null
  ctl '_fault?empty_siblings=1&tree_page=2' >/dev/null
  p=$(lfl download lfl-test/tiny-model --exclude '*.safetensors')
  expect_eq "$(find "$p" -type l | wc -l)" 5 "files from the tree listing"
  [ "$(ctl '_count?contains=/tree/')" -ge 4 ] || fail "tree pages"
}

t_concurrent_processes() {
  fresh_home conc
  ctl '_fault?slow_ms=10' >/dev/null
  (lfl download lfl-test/tiny-model >"$T/c1" 2>"$T/e1"; echo $? >"$T/r1") &
  local a=$!
  (lfl download lfl-test/tiny-model >"$T/c2" 2>"$T/e2"; echo $? >"$T/r2") &
  local b=$!
  wait $a $b
  expect_eq "$(cat "$T/r1")$(cat "$T/r2")" 00 "exit codes ($(cat "$T/e1" "$T/e2"))"
  expect_eq "$(cat "$T/c1")" "$(cat "$T/c2")"
  local p
  p=$(cat "$T/c1")
  expect_eq "$(large_sha "$p/model.safetensors")" "$(basename "$(readlink "$p/model.safetensors")")"
  local sha
  sha=$(basename "$(readlink "$p/model.safetensors")")
  expect_eq "$(ctl "_count?server=cdn&contains=$sha")" 1 "the large blob was fetched once"
  [ -z "$(find "$HF_HOME" -name '*.incomplete' -o -name '*.tmp')" ] || fail "temp files left behind"
}

t_lua_api() {
  fresh_home lua
  local out
  out=$(lfl -e '
    local info = lfl.hub.info("lfl-test/tiny-model")
    local by = {}
    for _, f in ipairs(info.files) do by[f.name] = f end
    assert(info.sha == "'"$MAIN"'", "sha")
    assert(#info.files == 6, "6 files")
    assert(by["model.safetensors"].size == '$LARGE' and by["model.safetensors"].lfs, "lfs size")
    assert(by["config.json"].size > 0 and not by["config.json"].lfs, "regular size")
    -- resolve: local paths stay as they are, repo ids download (without redundant weights)
    assert(lfl.hub.resolve("'"$ROOT"'") == "'"$ROOT"'")
    local p = lfl.hub.resolve("lfl-test/tiny-model")
    assert(lfl.hub.path_kind(p .. "/model.safetensors") == "file", "safetensors fetched")
    assert(lfl.hub.path_kind(p .. "/pytorch_model.bin") == nil, "redundant .bin skipped")
    local d = lfl.hub.resolve_dataset({hf_hub_url = "lfl-test/tiny-data", folder = "data"})
    assert(d:match("/data$") and lfl.hub.path_kind(d .. "/train.jsonl") == "file", d)
    local ok, err = pcall(lfl.hub.resolve, "./no/such/dir")
    assert(not ok and err:find("neither an existing local path"), err)
    ok, err = pcall(lfl.hub.resolve, "no-such/dir")
    assert(not ok and err:find("HTTP 401", 1, true) and err:find("is not an existing local path either", 1, true), err)
    print("lua ok")')
  expect_eq "$out" "lua ok"
  lfl download lfl-test/tiny-model --list | grep -q "model.safetensors" || fail "--list"
}

t_local_dir() {
  fresh_home localdir
  local p d="$T/local"
  p=$(lfl download lfl-test/tiny-model --include '*.json' --local-dir "$d")
  expect_eq "$p" "$d"
  [ -f "$d/config.json" ] && [ ! -L "$d/config.json" ] || fail "not a regular file"
  expect_in "$(cat "$d/config.json")" '"hidden_size": 8'
  expect_eq "$(sed -n 1p "$d/.cache/huggingface/download/config.json.metadata")" "$MAIN" "metadata commit"
  p=$(lfl download lfl-test/tiny-model sub/dir/notes.txt --local-dir "$d")
  expect_eq "$p" "$d/sub/dir/notes.txt"
  expect_eq "$(cat "$p")" "a nested file"
}

t_progress() {
  fresh_home progress
  local p
  lfl -e "lfl.hub.download('lfl-test/tiny-model', {progress=true})" 2>"$T/err" >/dev/null
  expect_in "$(cat "$T/err")" "6/6 files"
  fresh_home progress2
  lfl download lfl-test/tiny-model 2>"$T/err" >/dev/null
  expect_eq "$(wc -c <"$T/err")" 0 "quiet when stderr is not a terminal"
  lfl download --help | grep -q -- "--local-dir" || fail "help"
  lfl download >/dev/null 2>&1 && fail "no repo should fail"
  true
}

# dataset_info.json entries with hf_hub_url: configs and splits from the
# dataset card, folders as subsets, only the chosen files downloaded, the
# streaming reader over them, the cache offline, clear errors
t_datasets() {
  fresh_home datasets
  local d="$T/dsinfo" out snap
  mkdir -p "$d"
  cat >"$d/dataset_info.json" <<'JSON'
{"en": {"hf_hub_url": "lfl-test/multi-data"},
 "en_test": {"hf_hub_url": "lfl-test/multi-data", "split": "test"},
 "zh": {"hf_hub_url": "lfl-test/multi-data", "subset": "zh"},
 "zh_val": {"hf_hub_url": "lfl-test/multi-data", "subset": "zh", "split": "validation"},
 "xx": {"hf_hub_url": "lfl-test/multi-data", "subset": "xx"},
 "en_val": {"hf_hub_url": "lfl-test/multi-data", "split": "validation"},
 "alpha": {"hf_hub_url": "lfl-test/sub-data", "subset": "alpha"},
 "alpha_test": {"hf_hub_url": "lfl-test/sub-data", "subset": "alpha", "split": "test"},
 "beta": {"hf_hub_url": "lfl-test/sub-data", "folder": "beta", "columns": {"prompt": "text"}},
 "pq": {"hf_hub_url": "lfl-test/sub-data", "folder": "pq"},
 "tiny": {"hf_hub_url": "lfl-test/tiny-data"}}
JSON
  cat >"$T/ds.lua" <<LUA
local function load(name, extra)
  local a = {dataset = name, dataset_dir = "$d"}
  for k, v in pairs(extra or {}) do a[k] = v end
  local d = lfl.data.load(a)
  local qs = {}
  for _, ex in ipairs(d.train) do qs[#qs + 1] = ex.prompt[1].content end
  return table.concat(qs, "|")
end
if arg and arg[1] == "offline" then io.write(load("en")) return end
assert(load("en") == "en 1|en 2|en 3", load("en"))
assert(load("en_test") == "en test")
assert(load("zh") == "zh 1|zh 2", load("zh"))
assert(load("zh_val") == "zh val")
assert(load("alpha") == "alpha 1|alpha, 2", load("alpha"))
assert(load("alpha_test") == "alpha test")
assert(load("beta", {stage = "pt"}) == "beta line one|beta line two|beta line three", load("beta", {stage = "pt"}))
assert(load("tiny") == "hi|hi|hi")
local function err(name, want)
  local ok, e = pcall(load, name)
  assert(not ok and tostring(e):find(want, 1, true), name .. ": " .. tostring(e))
end
err("xx", "has no config 'xx' (its configs: en, zh)")
err("en_val", "has no split 'validation' (its splits: test, train)")
err("pq", "these are not: pq/train-00000-of-00001.parquet")
-- the streaming reader over the downloaded files gives the same examples
local s = require("lfl.stream").open({dataset = "en,zh", dataset_dir = "$d", disable_shuffling = true},
  {}, {prepare = function(list) local o = {}; for i, ex in ipairs(list) do o[i] = ex.prompt[1].content end; return o, 0 end})
assert(table.concat(s:next_rows(5), "|") == "en 1|en 2|en 3|zh 1|zh 2")
print("datasets ok")
LUA
  out=$(lfl "$T/ds.lua" 2>&1)
  expect_eq "$out" "datasets ok"
  snap="$HF_HOME/hub/datasets--lfl-test--multi-data/snapshots/$(python3 -c 'import hashlib; print(hashlib.sha1(b"multi").hexdigest())')"
  expect_eq "$(cd "$snap" && find . -type l | sort | tr '\n' ' ')" \
    "./README.md ./en/test.jsonl ./en/train-00000-of-00002.jsonl ./en/train-00001-of-00002.jsonl ./zh/train.json ./zh/validation.json " \
    "the files of the loaded splits"
  [ -z "$(find "$HF_HOME/hub/datasets--lfl-test--sub-data" -name '*.parquet')" ] || fail "the parquet file was fetched"
  # cached: offline and with the Hub unreachable
  ctl _reset >/dev/null
  expect_eq "$(HF_HUB_OFFLINE=1 lfl "$T/ds.lua" offline)" "en 1|en 2|en 3" "offline"
  expect_eq "$(ctl '_count')" 0 "offline mode made requests"
  expect_eq "$(HF_ENDPOINT="http://127.0.0.1:$DEAD" lfl "$T/ds.lua" offline 2>/dev/null)" "en 1|en 2|en 3" "unreachable"
}

# optional: huggingface_hub (Python) and lfl share the cache both ways
t_python_interop() {
  local py=python3
  [ -x "$HOME/.cache/lfl/refvenv/bin/python" ] && py="$HOME/.cache/lfl/refvenv/bin/python"
  if ! "$py" -c 'import huggingface_hub' 2>/dev/null; then echo "skipped: no huggingface_hub"; return 0; fi
  fresh_home py
  HF_HUB_DISABLE_TELEMETRY=1 "$py" -c 'from huggingface_hub import snapshot_download; snapshot_download("lfl-test/tiny-model")' 2>/dev/null
  ctl _reset >/dev/null
  lfl download lfl-test/tiny-model >/dev/null
  expect_eq "$(ctl '_count?contains=/resolve/')$(ctl '_count?server=cdn')" 00 "lfl re-downloaded Python's files"
  fresh_home py2
  lfl download lfl-test/tiny-model >/dev/null
  ctl _reset >/dev/null
  HF_HUB_DISABLE_TELEMETRY=1 "$py" -c 'from huggingface_hub import snapshot_download; snapshot_download("lfl-test/tiny-model")' 2>/dev/null
  expect_eq "$(ctl '_count?method=GET&contains=/resolve/')$(ctl '_count?server=cdn')" 00 "Python re-downloaded lfl's files"
}

# ---- uploads (huggingface_hub's protocol against the mock) ----

# a folder to upload: regular files (one needs percent-encoding, one nested, one
# empty), an LFS file, and what upload_folder skips (.git, .cache/huggingface)
make_upload_folder() {
  local d=$1 seed=$2
  rm -rf "$d"
  mkdir -p "$d/sub/dir" "$d/.git" "$d/.cache/huggingface" "$d/deep/.git"
  python3 - "$d" "$seed" <<'EOF'
import random, sys
d, r = sys.argv[1], random.Random(int(sys.argv[2]))
open(d + "/model.safetensors", "wb").write(r.randbytes(2500001))
open(d + "/config.json", "w").write('{"model_type": "llama", "seed": %s}\n' % sys.argv[2])
open(d + "/sub/dir/notes.txt", "wb").write(r.randbytes(700))
open(d + "/with space+plus.txt", "w").write("percent-encoded\n")
open(d + "/empty.bin", "wb").close()
open(d + "/.git/HEAD", "w").write("ref: refs/heads/main\n")
open(d + "/deep/.git/config", "w").write("x\n")
open(d + "/.cache/huggingface/x.metadata", "w").write("x\n")
EOF
}

# every pushed file, downloaded back through the client, has the local bytes
expect_same_files() {
  local snap=$1 d=$2 f
  shift 2
  for f in "$@"; do
    cmp "$snap/$f" "$d/$f" || fail "pushed and downloaded $f differ"
  done
}

t_upload_lua() {
  fresh_home upload
  make_upload_folder "$T/up1" 1
  cat >"$T/up.lua" <<LUA
local hub = lfl.hub
local r = hub.upload_folder("lfl-test/up-lua", "$T/up1", {token = "hf_valid_token", create_repo = true,
  commit_message = "first push"})
assert(r.repo_id == "lfl-test/up-lua", r.repo_id)
assert(r.files == 5 and r.lfs_files == 1 and r.uploaded == 1 and r.bytes_uploaded == 2500001,
  string.format("%d files, %d lfs, %d uploaded, %d bytes", r.files, r.lfs_files, r.uploaded, r.bytes_uploaded))
assert(r.commit_oid and #r.commit_oid == 40 and r.commit_url:find(r.commit_oid, 1, true), tostring(r.commit_url))
local info = hub.info("lfl-test/up-lua")
assert(info.sha == r.commit_oid, "main is the new commit")
local names = {}
for _, f in ipairs(info.files) do names[#names + 1] = f.name .. (f.lfs and "(lfs)" or "") end
table.sort(names)
io.write(table.concat(names, " "), "\n", hub.download("lfl-test/up-lua"), "\n")
LUA
  local out snap
  out=$(lfl "$T/up.lua") || fail "$out"
  expect_eq "$(echo "$out" | head -1)" \
    ".gitattributes config.json empty.bin model.safetensors(lfs) sub/dir/notes.txt with space+plus.txt" "the repo's files"
  snap=$(echo "$out" | tail -1)
  expect_same_files "$snap" "$T/up1" config.json empty.bin model.safetensors sub/dir/notes.txt "with space+plus.txt"
  # the protocol: one create, one preupload, one LFS batch (LFS media type), one PUT without the token
  # to the storage URL, one verify (its href rewritten from huggingface.co to HF_ENDPOINT), one NDJSON commit
  expect_eq "$(ctl '_count?method=POST&contains=/api/repos/create&auth=1')" 1 "create"
  expect_eq "$(ctl '_count?method=POST&contains=/preupload/main&ctype=application/json')" 1 "preupload"
  expect_eq "$(ctl '_count?contains=.git/info/lfs/objects/batch&ctype=application/vnd.git-lfs%2Bjson&accept=application/vnd.git-lfs%2Bjson')" 1 "LFS batch"
  expect_eq "$(ctl '_count?server=cdn&method=PUT')" 1 "one PUT"
  expect_eq "$(ctl '_count?server=cdn&method=PUT&auth=1')" 0 "the token went to the storage host"
  expect_eq "$(ctl '_count?server=hub&method=POST&contains=/objects/verify')" 1 "verify on the endpoint"
  expect_eq "$(ctl '_count?method=POST&contains=/commit/main&ctype=application/x-ndjson')" 1 "commit"
  # again, unchanged: the repo has every file as it is (git blob id / sha256), so nothing is sent
  # and no commit is made; the answer names the branch's commit
  local first
  first=$(lfl -e 'io.write(lfl.hub.info("lfl-test/up-lua").sha)')
  ctl _reset >/dev/null
  out=$(lfl -e '
    local r = lfl.hub.upload_folder("lfl-test/up-lua", "'"$T/up1"'", {token = "hf_valid_token", create_repo = true})
    io.write(r.files, " ", r.lfs_files, " ", r.uploaded, " ", r.commit_oid)') || fail "$out"
  expect_eq "$out" "0 0 0 $first" "an unchanged folder"
  expect_eq "$(ctl '_count?contains=.git/info/lfs')$(ctl '_count?server=cdn')$(ctl '_count?contains=/commit/')" 000 \
    "requests for unchanged content"
  # one regular file changed: only it goes
  echo '{"changed": true}' >"$T/up1/config.json"
  out=$(lfl -e '
    local r = lfl.hub.upload_folder("lfl-test/up-lua", "'"$T/up1"'", {token = "hf_valid_token"})
    io.write(r.files, " ", r.lfs_files, " ", tostring(r.commit_oid ~= "'"$first"'"))') || fail "$out"
  expect_eq "$out" "1 0 true" "one changed file"
  expect_eq "$(cat "$(lfl download lfl-test/up-lua config.json)")" '{"changed": true}' "the changed file"
  # into a folder of the repo, filtered by patterns; HF_TOKEN as the token
  out=$(HF_TOKEN=hf_valid_token lfl -e '
    local r = lfl.hub.upload_folder("lfl-test/up-lua", "'"$T/up1"'", {path_in_repo = "/nested/", allow_patterns = "*.json"})
    local names = {}
    for _, f in ipairs(lfl.hub.info("lfl-test/up-lua").files) do names[#names + 1] = f.name end
    table.sort(names)
    io.write(r.files, " ", table.concat(names, " "))') || fail "$out"
  expect_eq "$out" "1 .gitattributes config.json empty.bin model.safetensors nested/config.json sub/dir/notes.txt with space+plus.txt"
  # a name without namespace: the Hub files it under the token's account
  out=$(lfl -e 'io.write(lfl.hub.upload_folder("solo", "'"$T/up1"'", {token = "hf_valid_token", create_repo = true,
    allow_patterns = "config.json"}).repo_id)') || fail "$out"
  expect_eq "$out" "lfl-user/solo"
  # bad options and folders
  out=$(lfl -e 'print(select(2, pcall(lfl.hub.upload_folder, "lfl-test/up-lua", "'"$T/up1"'", {tokn = "x"})))')
  expect_in "$out" "unknown option 'tokn'"
  expect_in "$out" "path_in_repo, commit_message"
  out=$(lfl -e 'print(select(2, pcall(lfl.hub.upload_folder, "lfl-test/up-lua", "'"$T/nothing"'", {token = "hf_valid_token"})))')
  expect_in "$out" "'$T/nothing' is not a folder"
  out=$(lfl -e 'print(select(2, pcall(lfl.hub.upload_folder, "lfl-test/up-lua", "'"$T/up1"'", {token = "hf_valid_token",
    allow_patterns = "*.nope"})))')
  expect_in "$out" "no files to upload in $T/up1 (after the allow/ignore patterns)"
}

t_upload_faults() {
  fresh_home upfaults
  make_upload_folder "$T/up2" 2
  local err out snap
  lfl -e 'lfl.hub.upload_folder("lfl-test/up-faults", "'"$T/up2"'", {token = "hf_valid_token", create_repo = true,
    allow_patterns = "config.json"})' || fail "create"
  ctl _reset >/dev/null
  # no token: 401, a message naming the repo and what to set; nothing was sent
  err=$(lfl -e 'lfl.hub.upload_folder("lfl-test/up-faults", "'"$T/up2"'")' 2>&1) && fail "an upload without a token"
  expect_in "$err" "upload to model lfl-test/up-faults (revision 'main')"
  expect_in "$err" "HTTP 401, no token was sent"
  expect_in "$err" "HF_TOKEN"
  expect_eq "$(ctl '_count?server=cdn')$(ctl '_count?contains=/commit/')" 00 "requests after the 401"
  err=$(HF_TOKEN=hf_wrong lfl -e 'lfl.hub.upload_folder("lfl-test/up-faults", "'"$T/up2"'")' 2>&1) && fail "a bad token"
  expect_in "$err" "HTTP 401, the token was refused"
  err=$(lfl -e 'lfl.hub.upload_folder("forbidden-org/x", "'"$T/up2"'", {token = "hf_valid_token", create_repo = true})' 2>&1) \
    && fail "a namespace without write access"
  expect_in "$err" "upload to model forbidden-org/x (revision 'main'), creating the repo: HTTP 403"
  err=$(lfl -e 'lfl.hub.upload_folder("lfl-test/no-such-repo", "'"$T/up2"'", {token = "hf_valid_token"})' 2>&1) \
    && fail "a missing repo"
  expect_in "$err" "repository not found"
  err=$(lfl -e 'lfl.hub.upload_folder("lfl-test/up-faults", "'"$T/up2"'", {token = "hf_valid_token", revision = "dev"})' 2>&1) \
    && fail "a missing branch"
  expect_in "$err" "the branch 'dev' does not exist"
  err=$(HF_ENDPOINT="http://127.0.0.1:$DEAD" lfl -e 'lfl.hub.upload_folder("lfl-test/up-faults", "'"$T/up2"'",
    {token = "hf_valid_token", retries = 1})' 2>&1) && fail "no network"
  expect_in "$err" "cannot reach http://127.0.0.1:$DEAD"
  # a 500 on the LFS PUT and on the batch call: retried, and the content arrives whole
  ctl _reset >/dev/null
  ctl '_fault?fail500_put=1&fail500_batch=1' >/dev/null
  out=$(lfl -e 'io.write(lfl.hub.upload_folder("lfl-test/up-faults", "'"$T/up2"'", {token = "hf_valid_token"}).uploaded)') \
    || fail "$out"
  expect_eq "$out" 1 "uploaded after the retries"
  expect_eq "$(ctl '_count?server=cdn&method=PUT')" 2 "the PUT was retried once"
  expect_eq "$(ctl '_count?contains=/objects/batch')" 2 "the batch call was retried once"
  snap=$(lfl download lfl-test/up-faults)
  expect_same_files "$snap" "$T/up2" config.json empty.bin model.safetensors sub/dir/notes.txt "with space+plus.txt"
  # multipart when the LFS server asks for it (parts listed out of order, a 500 on one part)
  make_upload_folder "$T/up3" 3
  ctl _reset >/dev/null
  ctl '_fault?multipart_chunk=1000000&fail500_put=1' >/dev/null
  lfl -e 'lfl.hub.upload_folder("lfl-test/up-faults", "'"$T/up3"'", {token = "hf_valid_token"})' || fail "multipart"
  expect_eq "$(ctl '_count?server=cdn&method=PUT')" 4 "three parts, one retried"
  expect_eq "$(ctl '_count?contains=.git/info/lfs/complete/')" 1 "one completion"
  snap=$(lfl download lfl-test/up-faults)
  expect_same_files "$snap" "$T/up3" config.json model.safetensors sub/dir/notes.txt
  # a failed commit is not repeated (it may have been made)
  make_upload_folder "$T/up4" 4
  ctl _reset >/dev/null
  ctl '_fault?fail500_commit=1' >/dev/null
  err=$(lfl -e 'lfl.hub.upload_folder("lfl-test/up-faults", "'"$T/up4"'", {token = "hf_valid_token"})' 2>&1) \
    && fail "a failed commit"
  expect_in "$err" "the commit: HTTP 500"
  expect_in "$err" "not retried"
  expect_eq "$(ctl '_count?contains=/commit/')" 1 "commit attempts"
}

# lfl export with export_hub_model_id: the merged model and its tokenizer are
# written to export_dir, then pushed; downloaded back, the files are the same bytes
t_export_push() {
  fresh_home export
  local base="$T/xbase" out snap f err
  rm -rf "$base" "$T/xadapter" "$T/xmerged"
  mkdir -p "$base"
  ln -s "$ROOT/tests/golden/models/llama/config.json" "$ROOT/tests/golden/models/llama/model.safetensors" "$base/"
  ln -s "$ROOT/tests/golden/serve/tokenizer.json" "$base/"
  lfl -e '
    lfl.manual_seed(3)
    local peft = require("lfl.train.peft")
    local m = lfl.model.load("'"$base"'")
    peft.add_lora(m, {rank = 4})
    for _, e in pairs(m.adapters) do e.B:normal_(0, 0.1) end
    peft.save_adapter(m, "'"$T/xadapter"'", "'"$base"'")' || fail "adapter"
  out=$(lfl export model_name_or_path="$base" adapter_name_or_path="$T/xadapter" export_dir="$T/xmerged" \
    export_size=4e-5 template=qwen export_hub_model_id=lfl-test/pushed hf_hub_token=hf_valid_token 2>&1) || fail "$out"
  expect_in "$out" "merged 1 adapter(s)"
  expect_in "$out" "pushed 7 file(s) to lfl-test/pushed (3 by LFS"
  [ -f "$T/xmerged/Modelfile" ] || fail "no Modelfile written"
  snap=$(lfl download lfl-test/pushed)
  expect_eq "$(cd "$snap" && find . -type l | sort | tr '\n' ' ')" \
    "./.gitattributes ./config.json ./generation_config.json ./model-00001-of-00003.safetensors ./model-00002-of-00003.safetensors ./model-00003-of-00003.safetensors ./model.safetensors.index.json ./tokenizer.json " \
    "the pushed files (the Modelfile stays local, as with LlamaFactory)"
  for f in "$T"/xmerged/*; do
    [ "$(basename "$f")" = Modelfile ] || cmp "$f" "$snap/$(basename "$f")" || fail "$(basename "$f") differs"
  done
  # the pushed model loads, with the merged weights
  out=$(lfl -e '
    local a, b = lfl.model.load("'"$T/xmerged"'"), lfl.model.load("'"$snap"'")
    local ids = lfl.tensor({{3, 5, 7}}, "i64")
    local x, y = a:forward(ids), b:forward(ids)
    io.write(lfl.no_grad(function() return (x - y):abs():max():item() end))') || fail "$out"
  expect_eq "$out" 0 "logits of the pushed model"
  # the same export again: nothing to push, no commit
  ctl _reset >/dev/null
  out=$(lfl export model_name_or_path="$base" adapter_name_or_path="$T/xadapter" export_dir="$T/xmerged" \
    export_size=4e-5 template=qwen export_hub_model_id=lfl-test/pushed hf_hub_token=hf_valid_token 2>&1) || fail "$out"
  expect_in "$out" "lfl-test/pushed already holds these files as they are"
  expect_eq "$(ctl '_count?contains=/commit/')$(ctl '_count?server=cdn')" 00 "requests for an unchanged export"
  # a stale file in export_dir is not pushed: only what this export wrote
  echo stale >"$T/xmerged/old.txt"
  ctl _reset >/dev/null
  out=$(HF_TOKEN=hf_valid_token lfl export model_name_or_path="$base" export_dir="$T/xmerged" \
    export_hub_model_id=lfl-test/pushed-base 2>&1) || fail "$out"
  expect_in "$out" "pushed 4 file(s) to lfl-test/pushed-base"
  # refusals: no export_dir, a bad repo id, a push that fails after the local export
  err=$(lfl export model_name_or_path="$base" export_hub_model_id=lfl-test/pushed 2>&1) && fail "no export_dir"
  expect_in "$err" "export_hub_model_id needs export_dir"
  err=$(lfl export model_name_or_path="$base" export_dir="$T/xm2" export_hub_model_id=a//b 2>&1) && fail "a bad repo id"
  expect_in "$err" "export_hub_model_id"
  expect_in "$err" "a Hub repo id"
  [ ! -e "$T/xm2" ] || fail "a bad repo id was refused only after the export"
  err=$(lfl export model_name_or_path="$base" export_dir="$T/xm3" export_hub_model_id=lfl-test/pushed 2>&1) \
    && fail "a push without a token"
  expect_in "$err" "the model was written to $T/xm3, but pushing it to lfl-test/pushed failed"
  expect_in "$err" "HTTP 401, no token was sent"
  [ -f "$T/xm3/config.json" ] || fail "the local export is missing"
}

# SmolLM2 with a LoRA adapter, merged and written as one GGUF, then pushed:
# the GGUF file alone goes to the repo, and comes back byte for byte
t_export_push_gguf() {
  local smol="${LFL_CACHE:-$HOME/.cache/lfl}/models/SmolLM2-135M-Instruct.Q4_1.gguf" out snap
  if [ ! -f "$smol" ]; then echo "skipped: no $smol"; return 0; fi
  fresh_home export_gguf
  rm -rf "$T/sadapter" "$T/sgguf"
  lfl -e '
    lfl.manual_seed(4)
    local peft = require("lfl.train.peft")
    local m = lfl.model.load("'"$smol"'")
    peft.add_lora(m, {rank = 2})
    for _, e in pairs(m.adapters) do e.B:normal_(0, 0.01) end
    peft.save_adapter(m, "'"$T/sadapter"'", "'"$smol"'")' || fail "adapter"
  out=$(lfl export model_name_or_path="$smol" adapter_name_or_path="$T/sadapter" export_dir="$T/sgguf" \
    export_format=gguf export_quantization=q8_0 export_hub_model_id=lfl-test/smol-gguf hf_hub_token=hf_valid_token 2>&1) \
    || fail "$out"
  expect_in "$out" "merged 1 adapter(s)"
  expect_in "$out" "pushed 1 file(s) to lfl-test/smol-gguf (1 by LFS"
  snap=$(lfl download lfl-test/smol-gguf)
  expect_eq "$(cd "$snap" && find . -type l | sort | tr '\n' ' ')" "./.gitattributes ./ggml-model-q8_0.gguf " "the pushed files"
  cmp "$snap/ggml-model-q8_0.gguf" "$T/sgguf/ggml-model-q8_0.gguf" || fail "the pushed GGUF differs"
}

# optional: the mock takes huggingface_hub's own uploads (its protocol is the
# real client's), and lfl and Python read each other's pushes
t_upload_python() {
  local py=python3
  [ -x "$HOME/.cache/lfl/refvenv/bin/python" ] && py="$HOME/.cache/lfl/refvenv/bin/python"
  if ! "$py" -c 'import huggingface_hub' 2>/dev/null; then echo "skipped: no huggingface_hub"; return 0; fi
  fresh_home pyup
  make_upload_folder "$T/up5" 5
  ctl '_fault?multipart_chunk=1000000' >/dev/null
  HF_HUB_DISABLE_TELEMETRY=1 "$py" - "$T/up5" <<'EOF' 2>/dev/null || fail "huggingface_hub's upload to the mock"
import sys
from huggingface_hub import HfApi
api = HfApi(token="hf_valid_token")
api.create_repo("lfl-test/py-up", exist_ok=True)
api.upload_folder(repo_id="lfl-test/py-up", folder_path=sys.argv[1])
EOF
  local snap
  snap=$(lfl download lfl-test/py-up)
  expect_same_files "$snap" "$T/up5" config.json empty.bin model.safetensors sub/dir/notes.txt "with space+plus.txt"
  make_upload_folder "$T/up6" 6
  lfl -e 'lfl.hub.upload_folder("lfl-test/py-up", "'"$T/up6"'", {token = "hf_valid_token"})' || fail "lfl's push"
  snap=$(HF_HUB_DISABLE_TELEMETRY=1 "$py" -c 'from huggingface_hub import snapshot_download; import sys
print(snapshot_download("lfl-test/py-up", cache_dir=sys.argv[1]))' "$T/pycache" 2>/dev/null) || fail "Python's download"
  expect_same_files "$snap" "$T/up6" config.json model.safetensors sub/dir/notes.txt "with space+plus.txt"
}

for t in ${ONLY:-t_sha256_vectors t_patterns t_fresh_snapshot t_cache_hit t_cache_hit_no_network t_offline \
         t_patterns_and_revisions t_resume_in_run t_resume_across_runs t_redirect_no_token_leak \
         t_checksum_mismatch t_oversize t_errors t_retries_and_renames t_concurrent_processes t_lua_api t_local_dir \
         t_progress t_datasets t_python_interop t_upload_lua t_upload_faults t_export_push t_export_push_gguf t_upload_python}; do
  run $t
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
