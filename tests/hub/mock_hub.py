#!/usr/bin/env python3
"""A mock Hugging Face Hub for lfl's hub tests (Python 3 standard library only).

Two HTTP servers on 127.0.0.1 with OS-chosen free ports, sharing one state:
  hub  - /api/{models,datasets}/{repo}[/revision/{rev}][?blobs=true]
         HEAD/GET /[datasets/]{repo}/resolve/{rev}/{file}: regular files answer
         200 with a quoted git-sha1 ETag, LFS files 302 to the cdn server with
         X-Linked-Etag (sha256) and X-Linked-Size; X-Repo-Commit on both.
  cdn  - GET /cdn/{sha256}: LFS content, Range aware (206 + Content-Range).
Control (on the hub port): /_reset, /_fault?name=value&..., /_count?filters (server,
method, contains, auth, range, ctype, accept), /_sent,
/_ranges?contains=..., /_stats (JSON).
Faults: drop_after=N drop_count=K (cdn: send N bytes then cut the connection,
K times), corrupt=1 (cdn: one byte flipped), fail500=K (next K resolve
requests answer 500), fail500_api=K, slow_ms=M (cdn: sleep per 64 KiB),
ignore_range=1 (cdn answers 200 to Range requests), empty_siblings=1 (the
revision API lists no files: clients use the tree API), tree_page=N,
cdn_status=S cdn_status_count=K (the cdn answers status S, K times),
endless=1 (GETs of file content, hub and cdn: 200 without Content-Length and
the content followed by filler until the client hangs up, at most
endless_max bytes, default 300 MB), oversize_cl=N (GETs of file content
declare and send N filler bytes more than the file has), endless_error=K
(the next K resolve GETs answer 500 with an endless body), endless_api=K (the
next K API GETs answer 200 with an endless JSON body). /_sent: the body
bytes the endless and oversized answers wrote since the last /_reset.
Uploads (huggingface_hub's protocol; a write needs 'Bearer hf_valid_token', 401
without or with another token; namespace forbidden-org answers 403):
POST /api/repos/create (409 when it exists; a new repo has a .gitattributes
commit), POST /api/{models,datasets}/{repo}/preupload/{rev} (LFS: *.safetensors,
*.bin, *.gguf, *.pt, *.pth, *.parquet, files of 10 MiB and more; oid of what the
repo holds), POST /{[datasets/]repo}.git/info/lfs/objects/batch (LFS media type
required; no actions for content the storage has; basic: PUT to
cdn /cdn/upload/{oid}, checked against the oid; multipart when multipart_chunk=N
and the object is larger: zero-padded part keys, PUT ?part=k answering an ETag,
completion POST to the hub), verify POST (its href on https://huggingface.co:
clients rewrite it to their endpoint), POST /api/.../commit/{rev} (NDJSON; the
preupload sample of a regular file must match its content; an lfsFile must
name stored content). Upload faults: fail500_put=K (the next K cdn PUTs answer
500), fail500_commit=K, fail500_batch=K. /_blob?oid=: 1 when the storage has it.
Repos: lfl-test/tiny-model (main, v1.0, refs/pr/1), lfl-test/gated-model
(needs 'Bearer hf_valid_token'), lfl-test/old-name (renamed: relative 307 to
tiny-model), datasets lfl-test/tiny-data, lfl-test/multi-data (a card with
configs en/zh and splits), lfl-test/sub-data (folders, no configs; a parquet
folder). Unknown repos: 401 RepoNotFound.

Usage: mock_hub.py --port-file F [--large-size BYTES] [--lifetime SECONDS]
"""
import argparse
import base64
import hashlib
import http.server
import json
import os
import random
import socket
import sys
import threading
import time
import urllib.parse

VALID_TOKEN = "hf_valid_token"
LOCK = threading.Lock()
STATE = {"faults": {}, "log": [], "sent": 0, "samples": {}, "parts": {}}
LFS_MEDIA = "application/vnd.git-lfs+json"
LFS_EXTS = {"safetensors", "bin", "gguf", "pt", "pth", "parquet"}
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"
CDN_PORT = [0]


def git_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def commit_of(name):
    return hashlib.sha1(name.encode()).hexdigest()


def build_repos(large_size):
    rng = random.Random(1234)
    large = rng.randbytes(large_size)
    small_bin = rng.randbytes(5000)
    base = {
        "config.json": (b'{"model_type": "llama", "hidden_size": 8, "vocab_size": 32}\n', False),
        "tokenizer.json": (b'{"version": "1.0", "model": {"type": "BPE", "vocab": {}}}\n', False),
        "sub/dir/notes.txt": (b"a nested file\n", False),
        "with space+plus.txt": (b"a name that needs percent-encoding\n", False),
        "model.safetensors": (large, True),
        "pytorch_model.bin": (small_bin, True),
    }
    pr = dict(base)
    pr["config.json"] = (b'{"model_type": "llama", "hidden_size": 16}\n', False)
    model = {
        "revisions": {"main": commit_of("main"), "v1.0": commit_of("main"), "refs/pr/1": commit_of("pr1")},
        "commits": {commit_of("main"): base, commit_of("pr1"): pr},
    }
    gated_files = {"config.json": (b'{"model_type": "gated"}\n', False), "model.safetensors": (small_bin, True)}
    gated = {"revisions": {"main": commit_of("gated")}, "commits": {commit_of("gated"): gated_files}, "gated": True}
    data_files = {
        "README.md": (b"# tiny data\n", False),
        "data/train.jsonl": (b'{"instruction": "hi", "output": "hello"}\n' * 3, False),
    }
    data = {"revisions": {"main": commit_of("data")}, "commits": {commit_of("data"): data_files}}
    # a dataset card with configs (data_files per split; a data_dir config), and a repo without one
    card = (b"---\npretty_name: multi\nconfigs:\n- config_name: en\n  data_files:\n  - split: train\n"
            b"    path: en/train-*.jsonl\n  - split: test\n    path: \"en/test.jsonl\"\n  default: true\n"
            b"- config_name: zh\n  data_dir: zh\n---\n# multi\n")
    rec = lambda q, a: json.dumps({"instruction": q, "output": a}).encode() + b"\n"
    multi_files = {
        "README.md": (card, False),
        "en/train-00000-of-00002.jsonl": (rec("en 1", "a") + rec("en 2", "b"), False),
        "en/train-00001-of-00002.jsonl": (rec("en 3", "c"), True),
        "en/test.jsonl": (rec("en test", "t"), False),
        "zh/train.json": (json.dumps([{"instruction": "zh 1", "output": "x"}, {"instruction": "zh 2", "output": "y"}]).encode(), False),
        "zh/validation.json": (json.dumps([{"instruction": "zh val", "output": "v"}]).encode(), False),
    }
    multi = {"revisions": {"main": commit_of("multi")}, "commits": {commit_of("multi"): multi_files}}
    sub_files = {
        "README.md": (b"# folders as subsets\n", False),
        "alpha/train.csv": (b"instruction,output\nalpha 1,a\n\"alpha, 2\",b\n", False),
        "alpha/test.csv": (b"instruction,output\nalpha test,t\n", False),
        "beta/part1.txt": (b"beta line one\nbeta line two\n", False),
        "beta/part2.txt": (b"beta line three\n", False),
        "pq/train-00000-of-00001.parquet": (b"PAR1 not really", True),
    }
    sub = {"revisions": {"main": commit_of("sub")}, "commits": {commit_of("sub"): sub_files}}
    repos = {
        ("dataset", "lfl-test/multi-data"): multi,
        ("dataset", "lfl-test/sub-data"): sub,
        ("model", "lfl-test/tiny-model"): model,
        ("model", "lfl-test/gated-model"): gated,
        ("dataset", "lfl-test/tiny-data"): data,
    }
    blobs = {}
    for repo in repos.values():
        for files in repo["commits"].values():
            for content, lfs in files.values():
                if lfs:
                    blobs[hashlib.sha256(content).hexdigest()] = content
    return repos, blobs


REPOS, BLOBS = {}, {}
RENAMED = {("model", "lfl-test/old-name"): "lfl-test/tiny-model"}


def take_fault(name):
    """Decrements a counted fault; True when it fires."""
    with LOCK:
        n = int(STATE["faults"].get(name, 0))
        if n > 0:
            STATE["faults"][name] = n - 1
            return True
    return False


def fault(name, default=0):
    with LOCK:
        return STATE["faults"].get(name, default)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_name_tag = "hub"

    def log_message(self, *args):
        pass

    def record(self):
        self._entry = {
            "server": self.server_name_tag, "method": self.command,
            "path": urllib.parse.unquote(self.path.split("?")[0]),
            "range": self.headers.get("Range"), "auth": self.headers.get("Authorization"),
            "ctype": self.headers.get("Content-Type"), "accept": self.headers.get("Accept"),
            "query": urllib.parse.urlsplit(self.path).query,
        }
        with LOCK:
            STATE["log"].append(self._entry)

    def send(self, status, headers=None, body=b"", head=False):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def error(self, status, code, message, commit=None, head=False):
        h = {"X-Error-Code": code, "X-Error-Message": message, "X-Request-Id": "Root=mock-%d" % time.time_ns(),
             "Content-Type": "application/json"}
        if commit:
            h["X-Repo-Commit"] = commit
        self.send(status, h, json.dumps({"error": message}).encode(), head)

    def do_HEAD(self):
        self.record()
        self.route(head=True)

    def do_GET(self):
        self.record()
        self.route(head=False)

    def do_POST(self):
        self.record()
        self.route(head=False)

    def do_PUT(self):
        self.record()
        self.route(head=False)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n else b""
        with LOCK:
            self._entry["body_len"] = len(data)
        return data

    def json_body(self):
        try:
            return json.loads(self.read_body() or b"null")
        except ValueError:
            return None

    # ---- hub routes ----
    def route(self, head):
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, urllib.parse.parse_qs(url.query)
        if path.startswith("/_"):
            return self.control(path, query)
        if path == "/api/repos/create" and self.command == "POST":
            return self.create_repo()
        if path.startswith("/api/") and self.command == "POST":
            return self.api_write(path)
        if path.startswith("/api/"):
            return self.api(path, query, head)
        if ".git/info/lfs/" in path and self.command == "POST":
            return self.lfs(path)
        if "/resolve/" in path:
            return self.resolve(path, head)
        self.send(404, {}, b"not found", head)

    def repo_access(self, kind, repo_id, head, redirect_path=None):
        """The repo dict, or None after answering an error/redirect."""
        key = (kind, repo_id)
        if key in RENAMED and redirect_path is not None:
            new = redirect_path.replace(repo_id, RENAMED[key], 1)
            self.send(307, {"Location": new}, b"", head)
            return None
        repo = REPOS.get(key)
        if repo is None:
            self.error(401, "RepoNotFound", "Repository Not Found for url: %s." % self.path, head=head)
            return None
        if repo.get("gated"):
            auth = self.headers.get("Authorization")
            if auth is None:
                self.error(401, "GatedRepo", "Access to model %s is restricted. You must have access to it "
                           "and be authenticated to access it. Please log in." % repo_id, head=head)
                return None
            if auth != "Bearer " + VALID_TOKEN:
                self.error(403, "GatedRepo", "Access to model %s is restricted and you are not in the "
                           "authorized list." % repo_id, head=head)
                return None
        return repo

    def api(self, path, query, head):
        if take_fault("fail500_api"):
            return self.send(500, {}, b"internal error", head)
        if not head and take_fault("endless_api"):
            return self.endless_body(200, {"Content-Type": "application/json"}, b'{"siblings": [')
        parts = path[len("/api/"):].split("/")
        kind = {"models": "model", "datasets": "dataset", "spaces": "space"}.get(parts[0])
        rest = parts[1:]
        rev = "main"
        if "tree" in rest:
            return self.tree(kind, rest, query, head)
        if "revision" in rest:
            i = rest.index("revision")
            rev = urllib.parse.unquote("/".join(rest[i + 1:]))
            rest = rest[:i]
        repo_id = urllib.parse.unquote("/".join(rest))
        repo = self.repo_access(kind, repo_id, head, redirect_path=path if kind else None)
        if repo is None:
            return
        commit = repo["revisions"].get(rev, rev if rev in repo["commits"] else None)
        if commit is None:
            return self.error(404, "RevisionNotFound", "Invalid rev id: %s" % rev, head=head)
        blobs = query.get("blobs", ["false"])[0] == "true"
        siblings = []
        if fault("empty_siblings"):
            body = json.dumps({"id": repo_id, "sha": commit, "siblings": []}).encode()
            return self.send(200, {"Content-Type": "application/json"}, body, head)
        for name, (content, lfs) in sorted(repo["commits"][commit].items()):
            s = {"rfilename": name}
            if blobs:
                s["size"] = len(content)
                s["blobId"] = git_sha1(content)
                if lfs:
                    s["lfs"] = {"size": len(content), "sha256": hashlib.sha256(content).hexdigest(),
                                "pointerSize": 134}
            siblings.append(s)
        body = json.dumps({"id": repo_id, "sha": commit, "siblings": siblings, "private": False,
                           "gated": "auto" if repo.get("gated") else False}).encode()
        self.send(200, {"Content-Type": "application/json"}, body, head)

    # ---- uploads ----
    def write_access(self, kind, repo_id, need_repo=True):
        """The repo dict (or True when need_repo is False), or None after answering an error."""
        if self.headers.get("Authorization") != "Bearer " + VALID_TOKEN:
            self.error(401, "", "Invalid credentials in Authorization header")
            return None
        if repo_id.split("/")[0] == "forbidden-org":
            self.error(403, "", "You don't have the rights to write to %s" % repo_id)
            return None
        if not need_repo:
            return True
        repo = REPOS.get((kind, repo_id))
        if repo is None:
            self.error(404, "RepoNotFound", "Repository not found for url: %s." % self.path)
        return repo

    def create_repo(self):
        req = self.json_body() or {}
        kind = req.get("type") or "model"
        name, org = req.get("name"), req.get("organization") or "lfl-user"
        if not isinstance(name, str) or not name or kind not in ("model", "dataset", "space"):
            return self.error(400, "", "bad create request: %r" % (req,))
        repo_id = "%s/%s" % (org, name)
        if self.write_access(kind, repo_id, need_repo=False) is None:
            return
        prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[kind]
        url = "http://127.0.0.1:%d/%s%s" % (self.server.server_address[1], prefix, repo_id)
        with LOCK:
            if (kind, repo_id) in REPOS:
                exists = True
            else:
                exists = False
                first = commit_of("create:" + repo_id)
                REPOS[(kind, repo_id)] = {"revisions": {"main": first},
                                          "commits": {first: {".gitattributes": (GITATTRIBUTES, False)}},
                                          "visibility": req.get("visibility")}
        if exists:
            body = json.dumps({"error": "You already created this %s repo" % kind, "url": url}).encode()
            return self.send(409, {"Content-Type": "application/json"}, body)
        self.send(200, {"Content-Type": "application/json"},
                  json.dumps({"url": url, "name": repo_id, "id": "mock-" + commit_of(repo_id)[:8]}).encode())

    def api_write(self, path):
        parts = path[len("/api/"):].split("/")
        kind = {"models": "model", "datasets": "dataset", "spaces": "space"}.get(parts[0])
        rest = parts[1:]
        op = "preupload" if "preupload" in rest else "commit" if "commit" in rest else None
        if kind is None or op is None:
            self.read_body()
            return self.send(404, {}, b"not found")
        i = rest.index(op)
        repo_id, rev = "/".join(rest[:i]), urllib.parse.unquote("/".join(rest[i + 1:]))
        data = self.read_body()
        repo = self.write_access(kind, repo_id)
        if repo is None:
            return
        with LOCK:
            commit = repo["revisions"].get(rev)
            files = dict(repo["commits"][commit]) if commit else None
        if commit is None:
            return self.error(404, "RevisionNotFound", "Invalid rev id: %s" % rev)
        if op == "preupload":
            return self.preupload(kind, repo_id, files, data)
        if take_fault("fail500_commit"):
            return self.send(500, {}, b"internal error")
        return self.commit(kind, repo_id, repo, rev, commit, files, data)

    def preupload(self, kind, repo_id, files, data):
        try:
            req = json.loads(data)
            out = []
            for f in req["files"]:
                path, size, sample = f["path"], int(f["size"]), base64.b64decode(f["sample"], validate=True)
                if len(sample) > 512 or len(sample) > size:
                    raise ValueError("sample of %s has %d bytes" % (path, len(sample)))
                with LOCK:
                    STATE["samples"][(kind, repo_id, path)] = sample
                lfs = path.rsplit(".", 1)[-1] in LFS_EXTS or size >= 10 << 20
                e = {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
                if path in files:
                    content, was_lfs = files[path]
                    e["oid"] = hashlib.sha256(content).hexdigest() if was_lfs else git_sha1(content)
                out.append(e)
        except (ValueError, KeyError, TypeError) as ex:
            return self.error(400, "", "bad preupload request: %s" % ex)
        self.send(200, {"Content-Type": "application/json"}, json.dumps({"files": out, "commitOid": "x"}).encode())

    def commit(self, kind, repo_id, repo, rev, parent, files, data):
        lines = [json.loads(x) for x in data.split(b"\n") if x.strip()]
        if not lines or lines[0].get("key") != "header" or not isinstance(lines[0]["value"].get("summary"), str):
            return self.error(400, "", "the first line of a commit must be its header")
        for ln in lines[1:]:
            key, v = ln.get("key"), ln.get("value", {})
            path = v.get("path")
            if key == "file":
                if v.get("encoding") != "base64":
                    return self.error(400, "", "file %s: encoding must be base64" % path)
                content = base64.b64decode(v["content"], validate=True)
                with LOCK:
                    sample = STATE["samples"].get((kind, repo_id, path))
                if sample is None or sample != content[:512]:
                    return self.error(400, "", "file %s: not preuploaded, or its sample does not match" % path)
                files[path] = (content, False)
            elif key == "lfsFile":
                with LOCK:
                    content = BLOBS.get(v.get("oid"))
                if v.get("algo") != "sha256" or content is None or len(content) != v.get("size"):
                    return self.error(422, "", "Your push was rejected because an LFS pointer pointed to a file "
                                      "that does not exist: %s" % path)
                files[path] = (content, True)
            else:
                return self.error(400, "", "unknown commit line %r" % key)
        oid = hashlib.sha1(parent.encode() + data).hexdigest()
        with LOCK:
            repo["commits"][oid] = files
            repo["revisions"][rev] = oid
            repo.setdefault("messages", {})[oid] = lines[0]["value"]["summary"]
        url = "http://127.0.0.1:%d/%s/commit/%s" % (self.server.server_address[1], repo_id, oid)
        self.send(200, {"Content-Type": "application/json"},
                  json.dumps({"success": True, "commitOid": oid, "commitUrl": url, "hookOutput": ""}).encode())

    def lfs(self, path):
        head, op = path.split(".git/info/lfs/", 1)
        repo_id, kind = head.lstrip("/"), "model"
        for p, k in (("datasets/", "dataset"), ("spaces/", "space")):
            if repo_id.startswith(p):
                repo_id, kind = repo_id[len(p):], k
        req = self.json_body()
        if op == "objects/batch" and take_fault("fail500_batch"):
            return self.send(500, {}, b"internal error")
        if op == "objects/batch":
            if self.write_access(kind, repo_id) is None:
                return
            if self.headers.get("Accept") != LFS_MEDIA or self.headers.get("Content-Type") != LFS_MEDIA:
                return self.error(406, "", "the LFS batch API wants %s" % LFS_MEDIA)
            if not isinstance(req, dict) or req.get("operation") != "upload" or req.get("hash_algo") != "sha256":
                return self.error(400, "", "bad LFS batch request: %r" % (req,))
            chunk = int(fault("multipart_chunk", 0))
            hub = "http://127.0.0.1:%d" % self.server.server_address[1]
            cdn = "http://127.0.0.1:%d" % CDN_PORT[0]
            objs = []
            for o in req.get("objects", []):
                oid, size = o.get("oid"), o.get("size")
                if not isinstance(oid, str) or len(oid) != 64 or not isinstance(size, int):
                    objs.append({"oid": str(oid), "size": 0, "error": {"code": 422, "message": "bad object"}})
                    continue
                with LOCK:
                    have = oid in BLOBS
                if have:
                    objs.append({"oid": oid, "size": size})
                    continue
                verify = {"href": "https://huggingface.co/%s.git/info/lfs/objects/verify" % head.lstrip("/"),
                          "header": {"Authorization": "Basic mock"}}
                if chunk and size > chunk:
                    n = (size + chunk - 1) // chunk
                    header = {"chunk_size": chunk}
                    for k in range(n, 0, -1):  # out of order: clients sort by number
                        header["%05d" % k] = "%s/cdn/upload/%s?part=%d&sig=mock" % (cdn, oid, k)
                    upload = {"href": "%s%s.git/info/lfs/complete/%s" % (hub, head, oid), "header": header}
                else:
                    upload = {"href": "%s/cdn/upload/%s?sig=mock" % (cdn, oid), "header": {}}
                objs.append({"oid": oid, "size": size, "authenticated": True,
                             "actions": {"upload": upload, "verify": verify}})
            return self.send(200, {"Content-Type": LFS_MEDIA},
                             json.dumps({"transfer": "basic", "objects": objs}).encode())
        if op == "objects/verify":
            if self.write_access(kind, repo_id) is None:
                return
            with LOCK:
                content = BLOBS.get((req or {}).get("oid"))
            if content is None or len(content) != req.get("size"):
                return self.error(404, "", "object %s not found" % (req or {}).get("oid"))
            return self.send(200, {"Content-Type": "application/json"}, b"{}")
        if op.startswith("complete/"):
            oid = op[len("complete/"):]
            with LOCK:
                got = STATE["parts"].get(oid, {})
            try:
                order = [p["partNumber"] for p in req["parts"]]
                if order != list(range(1, len(got) + 1)):
                    raise ValueError("parts %r, stored %d" % (order, len(got)))
                for p in req["parts"]:
                    if p["etag"] != got[p["partNumber"]][1]:
                        raise ValueError("etag of part %d" % p["partNumber"])
                content = b"".join(got[k][0] for k in sorted(got))
                if req["oid"] != oid or hashlib.sha256(content).hexdigest() != oid:
                    raise ValueError("the parts do not hash to the oid")
            except (ValueError, KeyError, TypeError) as ex:
                return self.error(400, "", "bad multipart completion: %s" % ex)
            with LOCK:
                BLOBS[oid] = content
                STATE["parts"].pop(oid, None)
            return self.send(200, {"Content-Type": "application/json"}, b"{}")
        self.send(404, {}, b"unknown LFS operation")

    def tree(self, kind, rest, query, head):
        """/api/{kind}s/{repo}/tree/{rev}[?recursive=true&cursor=N]: paginated (page size: fault tree_page)"""
        i = rest.index("tree")
        repo_id, rev = "/".join(rest[:i]), urllib.parse.unquote("/".join(rest[i + 1:]))
        repo = self.repo_access(kind, repo_id, head)
        if repo is None:
            return
        commit = repo["revisions"].get(rev, rev if rev in repo["commits"] else None)
        if commit is None:
            return self.error(404, "RevisionNotFound", "Invalid rev id: %s" % rev, head=head)
        entries, dirs = [], set()
        for name, (content, lfs) in sorted(repo["commits"][commit].items()):
            parts = name.split("/")
            for k in range(1, len(parts)):
                d = "/".join(parts[:k])
                if d not in dirs:
                    dirs.add(d)
                    entries.append({"type": "directory", "oid": git_sha1(d.encode()), "size": 0, "path": d})
            e = {"type": "file", "oid": git_sha1(content), "size": len(content), "path": name}
            if lfs:
                e["lfs"] = {"oid": hashlib.sha256(content).hexdigest(), "size": len(content), "pointerSize": 134}
            entries.append(e)
        page = int(fault("tree_page", 1000))
        start = int(query.get("cursor", ["0"])[0])
        headers = {"Content-Type": "application/json"}
        if start + page < len(entries):
            nxt = "http://127.0.0.1:%d%s?recursive=true&expand=false&cursor=%d" % (
                self.server.server_address[1], urllib.parse.urlsplit(self.path).path, start + page)
            headers["Link"] = '<%s>; rel="next"' % nxt
        self.send(200, headers, json.dumps(entries[start:start + page]).encode(), head)

    def endless_body(self, status, headers, content=b""):
        """status, no Content-Length, content then filler until the client stops reading"""
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        limit = int(fault("endless_max", 300 << 20))
        chunk = b"x" * 65536
        sent = 0
        try:
            if content:
                self.wfile.write(content)
                sent += len(content)
            while sent < limit:
                self.wfile.write(chunk)
                sent += len(chunk)
        except (ConnectionError, OSError):
            pass
        finally:
            with LOCK:
                STATE["sent"] += sent

    def resolve(self, path, head):
        if take_fault("fail500"):
            return self.send(500, {}, b"internal error", head)
        if not head and take_fault("endless_error"):
            return self.endless_body(500, {"Content-Type": "text/plain"})
        prefix, rest = path.split("/resolve/", 1)
        prefix = prefix.lstrip("/")
        kind = "model"
        for p, k in (("datasets/", "dataset"), ("spaces/", "space")):
            if prefix.startswith(p):
                prefix, kind = prefix[len(p):], k
        if "/" not in rest:
            return self.send(400, {}, b"bad resolve url", head)
        rev_q, file_q = rest.split("/", 1)
        rev, file = urllib.parse.unquote(rev_q), urllib.parse.unquote(file_q)
        repo = self.repo_access(kind, prefix, head, redirect_path=path)
        if repo is None:
            return
        commit = repo["revisions"].get(rev, rev if rev in repo["commits"] else None)
        if commit is None:
            return self.error(404, "RevisionNotFound", "Invalid rev id: %s" % rev, head=head)
        entry = repo["commits"][commit].get(file)
        if entry is None:
            return self.error(404, "EntryNotFound", "%s does not exist on \"%s\"" % (file, rev), commit, head)
        content, lfs = entry
        if lfs:
            sha = hashlib.sha256(content).hexdigest()
            loc = "http://127.0.0.1:%d/cdn/%s?sig=mock" % (CDN_PORT[0], sha)
            return self.send(302, {"Location": loc, "X-Repo-Commit": commit, "X-Linked-Etag": '"%s"' % sha,
                                   "X-Linked-Size": str(len(content)), "ETag": '"%s"' % git_sha1(b"pointer")},
                             b"", head)
        self.send_content(content, {"ETag": '"%s"' % git_sha1(content), "X-Repo-Commit": commit}, head)

    def send_content(self, content, headers, head, cdn=False):
        rng = self.headers.get("Range")
        start = 0
        if rng and not (cdn and fault("ignore_range")):
            spec = rng.replace("bytes=", "").split("-")[0]
            start = int(spec)
            if start >= len(content) and len(content) > 0:
                return self.send(416, {"Content-Range": "bytes */%d" % len(content)}, b"", head)
            headers = dict(headers, **{"Content-Range": "bytes %d-%d/%d" % (start, len(content) - 1, len(content))})
            status = 206
        else:
            status = 200
        body = content[start:]
        if cdn and fault("corrupt"):
            mid = len(content) // 2 - start
            if 0 <= mid < len(body):
                body = body[:mid] + bytes([body[mid] ^ 0xFF]) + body[mid + 1:]
        if not head and fault("endless"):
            return self.endless_body(status, headers, body)
        extra = 0 if head else int(fault("oversize_cl", 0))
        if extra:
            body = body + b"y" * extra
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            return
        if extra:
            with LOCK:
                STATE["sent"] += len(body)
        drop = int(fault("drop_after", 0)) if cdn else 0
        if drop and drop < len(body) and take_fault("drop_count"):
            self.wfile.write(body[:drop])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        slow = float(fault("slow_ms", 0)) / 1000.0 if cdn else 0
        for off in range(0, len(body), 65536):
            self.wfile.write(body[off:off + 65536])
            if slow:
                time.sleep(slow)

    # ---- control ----
    def control(self, path, query):
        q = {k: v[0] for k, v in query.items()}
        if path == "/_reset":
            with LOCK:
                STATE["faults"].clear()
                STATE["log"].clear()
                STATE["sent"] = 0
            return self.send(200, {}, b"ok\n")
        if path == "/_fault":
            with LOCK:
                STATE["faults"].update(q)
            return self.send(200, {}, b"ok\n")
        if path == "/_blob":
            with LOCK:
                return self.send(200, {}, b"%d\n" % (q.get("oid") in BLOBS))
        if path == "/_sent":
            with LOCK:
                return self.send(200, {}, b"%d\n" % STATE["sent"])
        if path in ("/_count", "/_ranges", "/_stats"):
            with LOCK:
                log = list(STATE["log"])
            out = []
            for e in log:
                if e["path"].startswith("/_"):
                    continue
                if "server" in q and e["server"] != q["server"]:
                    continue
                if "method" in q and e["method"] != q["method"]:
                    continue
                if "contains" in q and q["contains"] not in e["path"]:
                    continue
                if "auth" in q and (e["auth"] is not None) != (q["auth"] == "1"):
                    continue
                if "range" in q and (e["range"] is not None) != (q["range"] == "1"):
                    continue
                if any(k in q and e.get(k) != q[k] for k in ("ctype", "accept")):
                    continue
                out.append(e)
            if path == "/_count":
                return self.send(200, {}, b"%d\n" % len(out))
            if path == "/_ranges":
                return self.send(200, {}, "".join("%s\n" % e["range"] for e in out).encode())
            return self.send(200, {"Content-Type": "application/json"}, json.dumps(out, indent=1).encode())
        self.send(404, {}, b"unknown control\n")


class CdnHandler(Handler):
    server_name_tag = "cdn"

    def route(self, head):
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/cdn/upload/") and self.command == "PUT":
            return self.put_upload(path[len("/cdn/upload/"):])
        if path.startswith("/cdn/"):
            status = int(fault("cdn_status", 0))
            if status and take_fault("cdn_status_count"):
                return self.send(status, {}, b"Access denied: the signature expired", head)
            content = BLOBS.get(path[len("/cdn/"):])
            if content is None:
                return self.send(404, {}, b"no such blob", head)
            return self.send_content(content, {"ETag": '"%s"' % path[5:]}, head, cdn=True)
        self.send(404, {}, b"not found", head)


    def put_upload(self, oid):
        data = self.read_body()
        if take_fault("fail500_put"):
            return self.send(500, {}, b"We encountered an internal error. Please try again.")
        if self.headers.get("Authorization"):
            return self.send(400, {}, b"a presigned URL takes no Authorization header")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if "part" in query:
            k = int(query["part"][0])
            etag = '"%s"' % hashlib.md5(data).hexdigest()
            with LOCK:
                STATE["parts"].setdefault(oid, {})[k] = (data, etag)
            return self.send(200, {"ETag": etag})
        if hashlib.sha256(data).hexdigest() != oid:
            return self.send(400, {}, b"The content does not match the oid it was uploaded for")
        with LOCK:
            BLOBS[oid] = data
        self.send(200, {"ETag": '"%s"' % hashlib.md5(data).hexdigest()})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # clients that abort a transfer (a failed sibling, Ctrl-C) are expected
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--large-size", type=int, default=4 << 20)
    ap.add_argument("--lifetime", type=float, default=300.0, help="exit after this many seconds regardless")
    a = ap.parse_args()
    global REPOS, BLOBS
    REPOS, BLOBS = build_repos(a.large_size)
    hub = Server(("127.0.0.1", 0), Handler)
    cdn = Server(("127.0.0.1", 0), CdnHandler)
    CDN_PORT[0] = cdn.server_address[1]
    for s in (hub, cdn):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d\n" % (hub.server_address[1], cdn.server_address[1]))
    os.replace(tmp, a.port_file)
    time.sleep(a.lifetime)
    sys.exit(0)


if __name__ == "__main__":
    main()
