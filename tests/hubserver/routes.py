"""HTTP routes of the test Hub: the endpoints huggingface_hub 2.x and datasets 5.x call.

Each route is (methods, regex on the raw path, handler name). Revisions and paths arrive URL-quoted
(`refs%2Fpr%2F1`, `data%2Fevaluations`) and are unquoted after matching. A request that matches no
route is answered 404 and recorded in ``app.unknown`` so tests can fail on calls we did not expect.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

from .storage import HubError, Repo, not_found

_REPO = r"/api/(?P<t>model|dataset|space)s/(?P<id>[^/]+/[^/]+)"
_PREFIX = r"/(?:(?P<prefix>datasets|spaces)/)?(?P<id>[^/]+/[^/]+)"

ROUTES = [
    ("GET", r"/api/whoami-v2", "whoami"),
    ("GET", r"/api/agent-harnesses", "agent_harnesses"),
    ("POST", r"/api/validate-yaml", "validate_yaml"),
    ("POST", r"/api/repos/create", "create_repo"),
    ("GET HEAD", _REPO + r"(?:/revision/(?P<rev>[^/]+))?", "repo_info"),
    ("GET", _REPO + r"/refs", "refs"),
    ("GET", _REPO + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", "tree"),
    ("POST", _REPO + r"/paths-info/(?P<rev>[^/]+)", "paths_info"),
    ("GET", _REPO + r"/commits/(?P<rev>[^/]+)", "commits"),
    ("POST", _REPO + r"/preupload/(?P<rev>[^/]+)", "preupload"),
    ("POST", _REPO + r"/commit/(?P<rev>[^/]+)", "commit"),
    ("POST DELETE", _REPO + r"/tag/(?P<rev>[^/]+)", "tag"),
    ("POST DELETE", _REPO + r"/branch/(?P<rev>[^/]+)", "branch"),
    ("POST", _PREFIX + r"\.git/info/lfs/objects/batch", "lfs_batch"),
    ("PUT", r"/lfs-upload/(?P<ticket>[0-9a-f]{32})", "lfs_put"),
    ("GET HEAD", _PREFIX + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
]
_COMPILED = [(set(m.split()), re.compile(p + "$"), name) for m, p, name in ROUTES]
_TYPES = {"datasets": "dataset", "spaces": "space", None: "model"}


class Dropped(Exception):
    """The server was told to die in the middle of this request."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # the app keeps its own request log
        pass

    def do_GET(self):
        self.dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    @property
    def app(self):
        return self.server.app

    # ---- plumbing ----------------------------------------------------------------------------
    def dispatch(self) -> None:
        if self.app.dead:
            self.close_connection = True
            return
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        for methods, regex, name in _COMPILED:
            m = regex.match(url.path)
            if m and self.command in methods:
                self.route = name
                self.app.log(self.command, name)
                try:
                    self.check_token()
                    getattr(self, name)({k: v and unquote(v) for k, v in m.groupdict().items()})
                except HubError as exc:
                    self.error(exc.status, str(exc), exc.code)
                except Dropped:
                    self.close_connection = True
                except Exception as exc:  # a server bug: answer it and let the tests see it
                    self.app.failures.append(f"{self.command} {self.path}: {exc!r}")
                    self.error(500, f"test Hub failed: {exc!r}")
                return
        self.route = "unknown"
        self.body()
        self.app.unknown.append(f"{self.command} {self.path}")
        self.error(404, f"no route for {self.command} {url.path}")

    def send(self, status: int, obj=None, raw: bytes | None = None, headers: dict | None = None) -> None:
        data = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        if raw is None:
            self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def error(self, status: int, message: str, code: str | None = None) -> None:
        # Close after an error: the request body may be unread, which would desync keep-alive.
        headers = {"X-Error-Message": message, "Connection": "close"} | ({"X-Error-Code": code} if code else {})
        self.send(status, {"error": message}, headers=headers)

    def body(self) -> bytes:
        """The request body (Content-Length or chunked); dies part-way if a crash is armed."""
        budget = self.app.crash_budget(self.route)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                chunks.append(self._read(size, None if budget is None else budget - sum(map(len, chunks))))
                self.rfile.readline()
            self.rfile.readline()
            data = b"".join(chunks)
        else:
            data = self._read(int(self.headers.get("Content-Length") or 0), budget)
        self.app.count_bytes(self.route, len(data))
        return data

    def _read(self, n: int, budget: int | None) -> bytes:
        if budget is not None and n > budget:
            self.app.count_bytes(self.route, len(self.rfile.read(budget)))
            self.app.die()
            raise Dropped()
        return self.rfile.read(n)

    def json_body(self) -> dict:
        raw = self.body()
        return json.loads(raw) if raw else {}

    def base_url(self) -> str:
        return f"http://{self.headers['Host']}"

    def repo_url(self, rtype: str, repo_id: str) -> str:
        return self.base_url() + ("" if rtype == "model" else f"/{rtype}s") + f"/{repo_id}"

    # ---- auth --------------------------------------------------------------------------------
    def check_token(self) -> None:
        auth = self.headers.get("Authorization", "")
        self.user = None
        if auth.startswith("Bearer "):
            self.user = self.app.tokens.get(auth[7:])
            if self.user is None:
                raise HubError(401, "Invalid credentials in Authorization header")

    def need(self, role: str) -> str:
        """The caller's name if its token has ``role`` (write implies read)."""
        if self.user is None:
            raise HubError(401, "You must be authenticated to do this (no token sent)")
        name, granted = self.user
        if role == "write" and granted != "write":
            raise HubError(403, f"{name} has read access only; use create_pr=True")
        return name

    # ---- account and repos -------------------------------------------------------------------
    def whoami(self, m):
        name = self.need("read")
        self.send(200, {"type": "user", "name": name, "orgs": [],
                        "auth": {"accessToken": {"role": self.user[1]}}})

    def agent_harnesses(self, m):
        # Fetched by huggingface_hub to name AI agents in its user agent; an empty registry is valid.
        self.send(200, {"standardEnvVars": [], "harnesses": {}})

    def validate_yaml(self, m):
        self.body()
        self.send(200, {"errors": [], "warnings": []})

    def create_repo(self, m):
        p = self.json_body()
        rtype = p.get("type") or "model"
        repo_id = f"{p.get('organization') or self.need('read')}/{p['name']}"
        url = self.repo_url(rtype, repo_id)
        with self.app.lock:
            if self.app.storage.exists(rtype, repo_id):
                # The client reads "url" even from this answer when exist_ok=True.
                return self.send(409, {"error": "You already created this repo", "url": url})
            self.app.storage.create(rtype, repo_id, self.need("write"))
        self.send(200, {"url": url, "name": repo_id, "id": repo_id})

    def open(self, m) -> Repo:
        return self.app.storage.repo(m.get("t") or _TYPES[m.get("prefix")], m["id"])

    def repo_info(self, m):
        repo = self.open(m)
        oid = repo.resolve(m["rev"] or "main")
        c = repo.commit(oid)
        self.send(200, {"_id": repo.repo_id, "id": repo.repo_id, "author": repo.repo_id.split("/")[0],
                        "sha": oid, "private": False, "disabled": False, "gated": False,
                        "downloads": 0, "likes": 0, "tags": [], "lastModified": c["date"],
                        "createdAt": repo.history(oid)[-1][1]["date"],
                        "siblings": [{"rfilename": p} for p in sorted(c["tree"])]})

    def refs(self, m):
        refs = self.open(m).refs()

        def fmt(kind, prefix):
            return [{"name": k, "ref": f"refs/{prefix}/{k}", "targetCommit": v}
                    for k, v in sorted(refs[kind].items())]

        prs = fmt("pulls", "pr") if self.query.get("include_prs") == ["1"] else []
        self.send(200, {"branches": fmt("heads", "heads"), "tags": fmt("tags", "tags"),
                        "converts": [], "pullRequests": prs})

    def commits(self, m):
        repo = self.open(m)
        self.send(200, [{"id": oid, "title": c["title"], "message": c["message"],
                         "authors": [{"user": c["author"]}], "date": c["date"]}
                        for oid, c in repo.history(repo.resolve(m["rev"]))])

    # ---- listings ----------------------------------------------------------------------------
    def item(self, repo: Repo, oid: str, path: str, entry: dict | None, expand: bool) -> dict:
        if entry is None:
            out = {"type": "directory", "path": path, "size": 0,
                   "oid": hashlib.sha1(f"{oid}:{path}".encode()).hexdigest()}
        else:
            out = {"type": "file", "path": path, "oid": entry["oid"], "size": entry["size"]}
            if entry.get("lfs"):
                out["lfs"] = {"oid": entry["lfs"], "size": entry["size"],
                              "pointerSize": entry["pointer_size"]}
        if expand:
            out["lastCommit"] = repo.last_commit(oid, path) if entry else None
        return out

    def tree(self, m):
        repo = self.open(m)
        oid = repo.resolve(m["rev"])
        files = repo.tree(oid)
        sub = (m["path"] or "").strip("/")
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        expand = self.query.get("expand", ["false"])[0].lower() in ("1", "true")
        inside = {p: e for p, e in files.items() if not sub or p.startswith(sub + "/")}
        if sub and not inside:
            raise not_found("EntryNotFound", f"{sub} does not exist on {m['rev']}")
        dirs, out = set(), []
        for path, entry in sorted(inside.items()):
            rest = path[len(sub) + 1:] if sub else path
            parts = rest.split("/")
            depth = len(parts) - 1 if recursive else min(1, len(parts) - 1)
            for i in range(depth):
                d = "/".join(filter(None, [sub] + parts[: i + 1]))
                if d not in dirs:
                    dirs.add(d)
                    out.append(self.item(repo, oid, d, None, expand))
            if recursive or len(parts) == 1:
                out.append(self.item(repo, oid, path, entry, expand))
        self.send(200, out)

    def paths_info(self, m):
        repo = self.open(m)
        oid = repo.resolve(m["rev"])
        raw = self.body()
        form = (json.loads(raw) if "json" in self.headers.get("Content-Type", "")
                else parse_qs(raw.decode()))
        paths = form.get("paths", [])
        expand = str(form.get("expand", ["false"])[0]).lower() in ("1", "true")
        files = repo.tree(oid)
        out = []
        for p in ([paths] if isinstance(paths, str) else paths):
            p = p.strip("/")
            if p in files:
                out.append(self.item(repo, oid, p, files[p], expand))
            elif p == "" or any(k.startswith(p + "/") for k in files):
                out.append(self.item(repo, oid, p, None, expand))
        self.send(200, out)

    # ---- uploads -----------------------------------------------------------------------------
    def preupload(self, m):
        repo = self.open(m)
        self.need("read" if self.query.get("create_pr") == ["1"] else "write")
        files = self.json_body()["files"]
        oid = repo.resolve(m["rev"])
        tree = repo.tree(oid)
        answers = []
        for f in files:
            lfs = f["size"] > 0 and repo.wants_lfs(oid, f["path"], f["size"], self.app.lfs_threshold)
            old = tree.get(f["path"])
            remote = old and (old.get("lfs") if lfs else old["oid"])
            answers.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular",
                            "shouldIgnore": False, "oid": remote or None})
        self.send(200, {"files": answers})

    def lfs_batch(self, m):
        repo = self.open(m)
        self.need("read")
        p = self.json_body()
        if p.get("operation") != "upload":
            raise HubError(400, "only the upload operation is served; download through /resolve")
        objects = []
        for o in p["objects"]:
            item = {"oid": o["oid"], "size": o["size"], "authenticated": True}
            if not repo.has_lfs(o["oid"]):
                ticket = secrets.token_hex(16)
                self.app.tickets[ticket] = (repo, o["oid"], o["size"])
                item["actions"] = {"upload": {"href": f"{self.base_url()}/lfs-upload/{ticket}"}}
            objects.append(item)
        self.send(200, {"transfer": "basic", "objects": objects})

    def lfs_put(self, m):
        # Like a presigned storage URL: the ticket is the credential, no Authorization header.
        data = self.body()
        target = self.app.tickets.pop(m["ticket"], None)
        if target is None:
            raise HubError(403, "unknown or used upload ticket")
        repo, sha256, size = target
        repo.put_lfs(sha256, size, data)
        self.send(200, {})

    def commit(self, m):
        repo = self.open(m)
        create_pr = self.query.get("create_pr") == ["1"]
        author = self.need("read" if create_pr or m["rev"].startswith("refs/pr/") else "write")
        lines = [json.loads(line) for line in self.body().splitlines() if line.strip()]
        with self.app.lock:
            refs = repo.refs()
            rev = m["rev"]
            kind, name = ("pulls", rev[len("refs/pr/"):]) if rev.startswith("refs/pr/") else \
                ("heads", rev.removeprefix("refs/heads/"))
            if name not in refs[kind]:
                raise not_found("RevisionNotFound", f"Invalid rev id: {rev} (commits go to a branch)")
            parent = refs[kind][name]
            header = next((x["value"] for x in lines if x["key"] == "header"), {})
            if header.get("parentCommit"):
                if create_pr:
                    parent = repo.resolve(header["parentCommit"])
                elif header["parentCommit"] != parent:
                    raise HubError(412, "A commit has happened since. Please refresh and try again.")
            tree = self.apply(repo, dict(repo.tree(parent)), lines)
            oid = repo.write_commit(parent, tree, header.get("summary", ""),
                                    header.get("description", ""), author)
            pr_url = None
            if create_pr:
                num = str(1 + max(map(int, refs["pulls"]), default=0))
                refs["pulls"][num] = oid
                pr_url = f"{self.repo_url(m['t'], repo.repo_id)}/discussions/{num}"
            else:
                refs[kind][name] = oid
            repo.save_refs(refs)
        self.send(200, {"success": True, "commitOid": oid, "pullRequestUrl": pr_url,
                        "commitUrl": f"{self.repo_url(m['t'], repo.repo_id)}/commit/{oid}"})

    def apply(self, repo: Repo, tree: dict, lines: list[dict]) -> dict:
        for line in lines:
            key, v = line["key"], line["value"]
            if key == "file":
                data = base64.b64decode(v["content"]) if v.get("encoding") == "base64" else v["content"].encode()
                tree[v["path"]] = repo.put_regular(data)
            elif key == "lfsFile":
                tree[v["path"]] = repo.lfs_entry(v["oid"], v["size"])
            elif key == "deletedFile":
                if tree.pop(v["path"], None) is None:
                    raise not_found("EntryNotFound", f"A file with this name doesn't exist: {v['path']}")
            elif key == "deletedFolder":
                for p in [p for p in tree if p.startswith(v["path"].rstrip("/") + "/")]:
                    del tree[p]
            elif key != "header":
                raise HubError(400, f"unsupported commit operation {key}")
        return tree

    # ---- refs --------------------------------------------------------------------------------
    def tag(self, m):
        self._ref(m, "tags", *((self.json_body()["tag"], m["rev"]) if self.command == "POST" else (m["rev"], None)))

    def branch(self, m):
        start = (self.json_body().get("startingPoint") or "main") if self.command == "POST" else None
        self._ref(m, "heads", m["rev"], start)

    def _ref(self, m, kind: str, name: str, target: str | None) -> None:
        repo = self.open(m)
        self.need("write")
        with self.app.lock:
            refs = repo.refs()
            if target is None:
                if refs[kind].pop(name, None) is None:
                    raise not_found("RevisionNotFound", f"{name} does not exist")
            elif name in refs[kind]:
                raise HubError(409, f"{'Tag' if kind == 'tags' else 'Branch'} {name} already exists")
            else:
                refs[kind][name] = repo.resolve(target)
            repo.save_refs(refs)
        self.send(200, {})

    # ---- downloads ---------------------------------------------------------------------------
    def resolve(self, m):
        repo = self.open(m)
        oid = repo.resolve(m["rev"])
        entry = repo.tree(oid).get(m["path"])
        if entry is None:
            raise not_found("EntryNotFound", f"Entry not found: {m['path']}")
        data = repo.read(entry)
        etag = entry.get("lfs") or entry["oid"]
        headers = {"X-Repo-Commit": oid, "ETag": f'"{etag}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if entry.get("lfs"):
            headers |= {"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(len(data))}
        rng = re.match(r"bytes=(\d*)-(\d*)$", self.headers.get("Range", ""))
        if rng and self.command == "GET":
            start = int(rng[1] or 0)
            end = min(int(rng[2]) if rng[2] else len(data) - 1, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return self.send(206, raw=data[start:end + 1], headers=headers)
        self.send(200, raw=data, headers=headers)

