"""On-disk repositories of the test Hub: content-addressed objects, a JSON commit log, refs.

    <root>/<type>s/<ns>/<name>/
        objects/<git-sha1>        bytes of regular files (the id git would give the blob)
        lfs/<sha256>              bytes of LFS files
        commits/<oid>.json        {parent, tree: {path: entry}, title, message, author, date}
        refs.json                 {heads: {main: oid}, tags: {...}, pulls: {"1": oid}}

A commit is visible only once refs.json names it, and refs.json is replaced by a rename, so a
server killed mid-request leaves at most unreferenced objects behind, never a half commit.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

#: What the real Hub writes into a new repo: Parquet and safetensors go through LFS.
GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n"
                        for p in ("*.parquet", "*.safetensors", "*.bin", "*.arrow"))


class HubError(Exception):
    """An error the routes turn into an HTTP status with the Hub's X-Error-Code header."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.code = status, code


def not_found(code: str, message: str) -> HubError:
    return HubError(404, message, code)


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class Repo:
    def __init__(self, path: Path, repo_id: str):
        self.path, self.repo_id = path, repo_id

    # ---- refs and revisions ------------------------------------------------------------------
    def refs(self) -> dict:
        return json.loads((self.path / "refs.json").read_text())

    def save_refs(self, refs: dict) -> None:
        write_atomic(self.path / "refs.json", json.dumps(refs, indent=1, sort_keys=True).encode())

    def resolve(self, rev: str) -> str:
        refs = self.refs()
        for prefix, kind in (("refs/heads/", "heads"), ("refs/tags/", "tags"), ("refs/pr/", "pulls")):
            if rev.startswith(prefix) and rev[len(prefix):] in refs[kind]:
                return refs[kind][rev[len(prefix):]]
        if rev in refs["heads"]:
            return refs["heads"][rev]
        if rev in refs["tags"]:
            return refs["tags"][rev]
        if len(rev) == 40 and (self.path / "commits" / f"{rev}.json").is_file():
            return rev
        raise not_found("RevisionNotFound", f"Invalid rev id: {rev}")

    def commit(self, oid: str) -> dict:
        return json.loads((self.path / "commits" / f"{oid}.json").read_text())

    def tree(self, oid: str) -> dict[str, dict]:
        return self.commit(oid)["tree"]

    def history(self, oid: str) -> list[tuple[str, dict]]:
        out = []
        while oid:
            c = self.commit(oid)
            out.append((oid, c))
            oid = c["parent"]
        return out

    def last_commit(self, oid: str, path: str) -> dict:
        """The newest commit at or before ``oid`` that changed ``path`` (for expand=true)."""
        entry = self.tree(oid).get(path)
        found = oid
        for older, c in self.history(oid)[1:]:
            if c["tree"].get(path) != entry:
                break
            found = older
        c = self.commit(found)
        return {"id": found, "title": c["title"], "date": c["date"]}

    # ---- objects -----------------------------------------------------------------------------
    def read(self, entry: dict) -> bytes:
        if entry.get("lfs"):
            return (self.path / "lfs" / entry["lfs"]).read_bytes()
        return (self.path / "objects" / entry["oid"]).read_bytes()

    def put_regular(self, data: bytes) -> dict:
        oid = git_sha1(data)
        target = self.path / "objects" / oid
        if not target.exists():
            write_atomic(target, data)
        return {"oid": oid, "size": len(data)}

    def has_lfs(self, sha256: str) -> bool:
        return (self.path / "lfs" / sha256).is_file()

    def put_lfs(self, sha256: str, size: int, data: bytes) -> None:
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
            raise HubError(400, f"LFS object {sha256}: content does not match its oid/size")
        write_atomic(self.path / "lfs" / sha256, data)

    def lfs_entry(self, sha256: str, size: int) -> dict:
        if not self.has_lfs(sha256):
            raise HubError(400, f"LFS object {sha256} was never uploaded", "LfsObjectMissing")
        pointer = lfs_pointer(sha256, size)
        return {"oid": git_sha1(pointer), "size": size, "lfs": sha256, "pointer_size": len(pointer)}

    def wants_lfs(self, oid: str, path: str, size: int, threshold: int) -> bool:
        """The Hub's rule: an LFS pattern in the revision's .gitattributes, or a large file."""
        attrs_entry = self.tree(oid).get(".gitattributes")
        attrs = self.read(attrs_entry).decode() if attrs_entry else ""
        patterns = [ln.split()[0] for ln in attrs.splitlines() if "filter=lfs" in ln]
        name = path.rsplit("/", 1)[-1]
        return size > threshold or any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(path, p)
                                       for p in patterns)

    # ---- writes ------------------------------------------------------------------------------
    def write_commit(self, parent: str | None, tree: dict, title: str, message: str, author: str) -> str:
        body = {"parent": parent, "tree": tree, "title": title, "message": message,
                "author": author, "date": now_iso()}
        raw = json.dumps(body, sort_keys=True).encode()
        oid = hashlib.sha1(b"commit %d\0" % len(raw) + raw).hexdigest()
        write_atomic(self.path / "commits" / f"{oid}.json", raw)
        return oid


class Storage:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _dir(self, rtype: str, repo_id: str) -> Path:
        ns, name = repo_id.split("/")
        return self.root / f"{rtype}s" / ns / name

    def exists(self, rtype: str, repo_id: str) -> bool:
        return (self._dir(rtype, repo_id) / "refs.json").is_file()

    def repo(self, rtype: str, repo_id: str) -> Repo:
        path = self._dir(rtype, repo_id)
        if not self.exists(rtype, repo_id):
            raise not_found("RepoNotFound", f"Repository not found: {repo_id}")
        return Repo(path, repo_id)

    def create(self, rtype: str, repo_id: str, author: str) -> Repo:
        repo = Repo(self._dir(rtype, repo_id), repo_id)
        entry = repo.put_regular(GITATTRIBUTES.encode())
        oid = repo.write_commit(None, {".gitattributes": entry}, "initial commit", "", author)
        repo.save_refs({"heads": {"main": oid}, "tags": {}, "pulls": {}})
        return repo
