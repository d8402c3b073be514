"""Dataset snapshots on the Hugging Face Hub: publish, pull by revision, list tagged snapshots.

Only the real ``huggingface_hub`` client talks to the Hub. ``HF_ENDPOINT`` and ``HF_TOKEN`` are read
when each call is made and passed explicitly, because the client freezes its constants at import.

Publishing is a file-set difference: part files are append-only and blobs are content-addressed, so
what changed since the remote head is the local files whose hash the remote tree lacks, plus the
part files that ``replace`` removed. It all goes in ONE commit, so a snapshot lands whole or not at
all, and the tag is set only after that commit exists.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from . import atomic
from .dataset import Dataset
from .errors import DataError
from .schema import TABLES, schema_of

#: What a snapshot holds besides the card; README.md is rendered at publish time.
UPLOAD_GLOBS = ("data/*/*.parquet", "blobs/*/*.safetensors", "runs/*/manifest.json")
#: Written into a pulled folder: where it came from, so missing blobs can be fetched on demand.
MARKER = ".fib-remote.json"
DEFAULT_ENDPOINT = "https://huggingface.co"


class HubError(RuntimeError):
    """A Hub operation failed; the message says what and what to do."""


# ---- client ----------------------------------------------------------------------------------
def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def client(endpoint_url: str | None = None):
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint_url or endpoint(), token=os.environ.get("HF_TOKEN") or None)


@contextmanager
def hub_errors(repo: str, action: str) -> Iterator[None]:
    """Turn the client's exceptions into one clear line naming the repo, the Hub and the fix."""
    try:  # huggingface_hub 2.x ships httpx2, 1.x uses httpx
        import httpx2 as httpx
    except ImportError:
        import httpx
    from huggingface_hub.errors import (HfHubHTTPError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    where = f"{repo} on {endpoint()}"
    try:
        yield
    except RevisionNotFoundError as exc:
        raise HubError(f"{action}: revision not found in {where} ({_first_line(exc)})") from exc
    except RepositoryNotFoundError as exc:
        raise HubError(f"{action}: repository {where} not found (or no access with this token)") from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            raise HubError(f"{action}: {endpoint()} rejected the token (HTTP 401); "
                           "set HF_TOKEN to a valid token") from exc
        if status == 412:
            raise HubError(f"{action}: {where} changed while publishing (another commit landed on "
                           "main); nothing was committed, rerun to publish on top of it") from exc
        if status == 403:
            raise HubError(f"{action}: no write access to {where} (HTTP 403); "
                           "use --create-pr to open a pull request instead") from exc
        raise HubError(f"{action}: {where} answered HTTP {status}: {_first_line(exc)}") from exc
    except (httpx.TransportError, ConnectionError) as exc:
        raise HubError(f"{action}: lost the connection to {endpoint()} ({exc}); nothing was "
                       "published unless a commit was reported; rerun to resume") from exc


def _first_line(exc: Exception) -> str:
    return next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)


def remote_tree(api, repo: str, revision: str) -> dict:
    from huggingface_hub.hf_api import RepoFile

    return {f.path: f for f in api.list_repo_tree(repo, repo_type="dataset", revision=revision,
                                                  recursive=True) if isinstance(f, RepoFile)}


# ---- hashing, the same ids the Hub keeps -----------------------------------------------------
def matches_remote(path: Path, remote) -> bool:
    """True if the local file has the remote entry's content: sha256 for LFS, git-sha1 otherwise."""
    from huggingface_hub.utils.sha import git_hash, sha_fileobj

    if remote.lfs is not None:
        if remote.lfs.size != path.stat().st_size:
            return False
        with open(path, "rb") as fh:
            return sha_fileobj(fh).hex() == remote.lfs.sha256
    return remote.size == path.stat().st_size and git_hash(path.read_bytes()) == remote.blob_id


def local_files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for pattern in UPLOAD_GLOBS
            for p in sorted(root.glob(pattern)) if not p.name.startswith(".")}


# ---- the card as a record of row counts ------------------------------------------------------
_COUNT_ROW = re.compile(r"^\| (" + "|".join(TABLES) + r") \| (\d+) \|$", re.M)
_DATE = re.compile(r"Snapshot date: (\S+?)\.")


def card_facts(text: str) -> dict:
    """Row counts and snapshot date as written by ``fib_data.card`` (the card is the record)."""
    date = _DATE.search(text)
    return {"rows": {t: int(n) for t, n in _COUNT_ROW.findall(text)},
            "snapshot_date": date.group(1) if date else None}


# ---- publish ---------------------------------------------------------------------------------
@dataclass
class Plan:
    upload: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    rows_before: dict[str, int] = field(default_factory=dict)
    rows_after: dict[str, int] = field(default_factory=dict)
    bytes: int = 0

    @property
    def blobs_added(self) -> int:
        return sum(p.startswith("blobs/") for p in self.upload)

    @property
    def data_changed(self) -> bool:
        return any(p != "README.md" for p in self.upload) or bool(self.delete)

    def title(self) -> str:
        deltas = [f"{self.rows_after[t] - self.rows_before.get(t, 0):+d} {t}" for t in TABLES
                  if self.rows_after[t] != self.rows_before.get(t, 0)]
        blobs = [f"+{self.blobs_added} blobs"] if self.blobs_added else []
        return "fib publish: " + (", ".join(deltas + blobs) or "no row changes")

    def description(self) -> str:
        lines = [f"- {t}: {self.rows_before.get(t, 0)} -> {self.rows_after[t]} rows" for t in TABLES]
        lines.append(f"- files added or changed: {len(self.upload)} ({self.bytes} bytes), "
                     f"removed: {len(self.delete)}, blobs added: {self.blobs_added}")
        return "\n".join(lines)


def plan_upload(files: dict[str, Path], remote: dict, rows_before: dict[str, int],
                rows_after: dict[str, int]) -> Plan:
    plan = Plan(rows_before=rows_before, rows_after=rows_after)
    for rel, path in files.items():
        old = remote.get(rel)
        # A blob's name is its sha256, so a blob the remote has is the same blob (no re-hashing).
        same = old is not None and (old.size == path.stat().st_size if rel.startswith("blobs/")
                                    else matches_remote(path, old))
        if not same:
            plan.upload.append(rel)
            plan.bytes += path.stat().st_size
    # Tables are exactly their local part files; blobs and run manifests are never deleted
    # (a folder pulled without --blobs lacks blobs that still belong to the snapshot).
    plan.delete = sorted(p for p in remote if p.startswith("data/") and p.endswith(".parquet")
                         and p not in files)
    return plan


def publish(dataset: Dataset | str | os.PathLike, repo: str, tag: str | None = None,
            message: str | None = None, create_pr: bool = False, force: bool = False,
            snapshot_date: str | None = None) -> dict:
    """Validate, upload what changed in one commit, then tag it. Returns what happened."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    ds = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
    _refuse_partial_pull(ds)
    if tag and create_pr:
        raise HubError("a pull request cannot be tagged; tag the merged commit instead")
    problems = _validate(ds)
    if problems:
        raise DataError(problems, f"refusing to publish {ds.root}")
    api = client()
    date = snapshot_date or datetime.now(timezone.utc).date().isoformat()
    with hub_errors(repo, "publish"), tempfile.TemporaryDirectory(prefix="fib-publish-") as tmp:
        api.create_repo(repo, repo_type="dataset", exist_ok=True)
        refs = api.list_repo_refs(repo, repo_type="dataset")
        old_tag = next((t for t in refs.tags if t.name == tag), None)
        if old_tag is not None and not force:
            raise HubError(f"tag {tag} already exists on {repo} (commit {old_tag.target_commit[:12]}); "
                           "pass --force to move it")
        head = next((b.target_commit for b in refs.branches if b.name == "main"), None)
        files, plan = _stage(ds, api, repo, head, Path(tmp), date)
        commit, pr = head, None
        if plan.data_changed:
            ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(files[p])) for p in plan.upload]
            ops += [CommitOperationDelete(path_in_repo=p) for p in plan.delete]
            info = api.create_commit(repo, ops, repo_type="dataset", parent_commit=head,
                                     commit_message=message or plan.title(),
                                     commit_description=plan.description(), create_pr=create_pr)
            commit, pr = info.oid, info.pr_revision
        if tag:
            if old_tag is not None:
                api.delete_tag(repo, tag=tag, repo_type="dataset")
            api.create_tag(repo, tag=tag, revision=commit, repo_type="dataset", tag_message=message)
    return {"repo": repo, "commit": commit, "tag": tag, "pull_request": pr,
            "committed": plan.data_changed, "title": plan.title(), "uploaded": plan.upload,
            "deleted": plan.delete, "bytes": plan.bytes if plan.data_changed else 0,
            "rows": plan.rows_after}


def _stage(ds: Dataset, api, repo: str, head: str | None, tmp: Path, date: str) -> tuple[dict, Plan]:
    """The files of the snapshot (card rendered into ``tmp``) and what of them the Hub lacks."""
    from .card import render_card

    remote = remote_tree(api, repo, head) if head else {}
    # The card goes to a temp copy: the local folder stays as it was, whatever happens.
    card = tmp / "README.md"
    card.write_text(render_card(ds, snapshot_date=date, name=repo))
    files = local_files(ds.root) | {"README.md": card}
    rows_now = {t: ds.count(t) for t in TABLES}
    return files, plan_upload(files, remote, _remote_rows(api, repo, head, remote), rows_now)


def _validate(ds: Dataset) -> list:
    # Imported here: the validate package is its own feature and heavier than publishing needs.
    from .validate import validate_dataset

    return validate_dataset(ds)


def _refuse_partial_pull(ds: Dataset) -> None:
    marker = ds.root / MARKER
    if marker.is_file():
        tables = json.loads(marker.read_text()).get("tables", list(TABLES))
        if set(tables) != set(TABLES):
            raise HubError(f"{ds.root} was pulled with only {', '.join(tables)}; publishing it "
                           "would drop the other tables. Pull all tables first.")


def _remote_rows(api, repo: str, head: str | None, remote: dict) -> dict[str, int]:
    if not head or "README.md" not in remote:
        return {}
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(repo, "README.md", repo_type="dataset", revision=head,
                           endpoint=api.endpoint, token=api.token)
    return card_facts(Path(path).read_text())["rows"]


# ---- pull ------------------------------------------------------------------------------------
def pull(repo: str, revision: str | None = None, to: str | os.PathLike | None = None,
         tables: list[str] | None = None, blobs: bool = False) -> Path:
    """Download one snapshot (chosen tables; blobs now or on demand) into ``to`` and verify it."""
    from huggingface_hub import snapshot_download

    tables = list(tables or TABLES)
    for t in tables:
        schema_of(t)
    target = Path(to or repo.split("/")[-1])
    api = client()
    with hub_errors(repo, f"pull {revision or 'main'}"):
        # Resolve once: a tag or branch could move while we download.
        commit = api.dataset_info(repo, revision=revision).sha
        patterns = ["README.md"] + [f"data/{t}/*.parquet" for t in tables] + ["runs/*/manifest.json"]
        patterns += ["blobs/*/*.safetensors"] if blobs else []
        snapshot_download(repo, repo_type="dataset", revision=commit, local_dir=target,
                          allow_patterns=patterns, endpoint=api.endpoint, token=api.token)
        remote = remote_tree(api, repo, commit)
    _drop_stale_parts(target, tables, remote)
    for t in TABLES:
        (target / "data" / t).mkdir(parents=True, exist_ok=True)
    _verify(target, remote, blobs)
    atomic.write_text(target / MARKER, json.dumps({
        "repo": repo, "revision": revision, "commit": commit, "endpoint": api.endpoint,
        "tables": tables, "blobs": blobs}, indent=1))
    return target


def _drop_stale_parts(target: Path, tables: list[str], remote: dict) -> None:
    """A folder pulled before at another revision may hold part files this snapshot lacks."""
    for t in tables:
        for p in (target / "data" / t).glob("*.parquet"):
            if f"data/{t}/{p.name}" not in remote:
                p.unlink()


def _verify(target: Path, remote: dict, blobs: bool) -> None:
    from .blobs import BlobStore

    bad = [rel for rel, entry in remote.items()
           if (target / rel).is_file() and rel != "README.md" and not matches_remote(target / rel, entry)]
    if bad:
        raise HubError(f"downloaded files do not match the Hub's hashes: {', '.join(bad)}")
    if blobs:
        store = BlobStore(target / "blobs", remote=False)
        for sha in store.all():
            store.verify(sha)


class RemoteBlobs:
    """``BlobStore.remote`` for a pulled folder: fetches a missing blob from the pulled commit."""

    def __init__(self, root: Path, info: dict):
        self.root, self.info = root, info

    @classmethod
    def of_folder(cls, root: Path) -> "RemoteBlobs | None":
        marker = root / MARKER
        return cls(root, json.loads(marker.read_text())) if marker.is_file() else None

    def __call__(self, sha: str, path: Path) -> None:
        from huggingface_hub import hf_hub_download

        api = client(os.environ.get("HF_ENDPOINT") or self.info["endpoint"])
        rel = path.relative_to(self.root).as_posix()
        with hub_errors(self.info["repo"], f"fetch blob {sha[:12]}"):
            hf_hub_download(self.info["repo"], rel, repo_type="dataset", revision=self.info["commit"],
                            local_dir=self.root, endpoint=api.endpoint, token=api.token)


# ---- snapshots -------------------------------------------------------------------------------
def snapshots(repo: str) -> list[dict]:
    """Each tag with its commit (date, title), snapshot date and row counts (from its card)."""
    from huggingface_hub import hf_hub_download

    api = client()
    out = []
    with hub_errors(repo, "snapshots"):
        for tag in api.list_repo_refs(repo, repo_type="dataset").tags:
            commit = api.list_repo_commits(repo, repo_type="dataset", revision=tag.target_commit)[0]
            card = hf_hub_download(repo, "README.md", repo_type="dataset", revision=tag.target_commit,
                                   endpoint=api.endpoint, token=api.token)
            facts = card_facts(Path(card).read_text())
            out.append({"tag": tag.name, "commit": tag.target_commit, "date": commit.created_at,
                        "title": commit.title, "snapshot_date": facts["snapshot_date"],
                        "rows": facts["rows"]})
    return sorted(out, key=lambda s: (s["date"] or datetime.min.replace(tzinfo=timezone.utc), s["tag"]))


# ---- revisions as dataset arguments ----------------------------------------------------------
_REVISION_ARG = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)@(?P<rev>.+)$")


def is_revision(arg: str) -> bool:
    """``ORG/NAME@rev`` names a Hub snapshot, unless a local folder has that name."""
    return bool(_REVISION_ARG.match(str(arg))) and not Path(arg).exists()


def materialize(arg: str | os.PathLike, workdir: str | os.PathLike, tables: list[str] | None = None) -> Path:
    """A dataset folder for ``arg``: itself if local, else the snapshot ``ORG/NAME@rev`` pulled
    into ``workdir`` (blobs stay remote and are fetched on demand)."""
    if not is_revision(str(arg)):
        return Path(arg)
    m = _REVISION_ARG.match(str(arg))
    safe = re.sub(r"[^\w.-]", "_", str(arg))
    return pull(m["repo"], revision=m["rev"], to=Path(workdir) / safe, tables=tables)
