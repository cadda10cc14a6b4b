"""A stand-in for ``huggingface_hub.snapshot_download`` over local folders (tests of hub ids, revision and token)."""

from __future__ import annotations

from pathlib import Path


class FakeHub:
    """``huggingface_hub.snapshot_download`` for repositories held as local folders: a snapshot folder per
    repository and revision, filled with the files each download's ``allow_patterns`` matches (as the hub cache is);
    ``local_files_only`` returns that folder once it exists. Records each call's arguments and the files fetched."""

    def __init__(self, root: Path, repos: dict[str, Path]):
        self.root, self.repos = root, repos
        self.calls: list[dict] = []
        self.fetched: list[str] = []

    def __call__(self, repo_id, *, local_files_only=False, allow_patterns=None, ignore_patterns=None, revision=None,
                 token=None, **kwargs):
        import fnmatch

        import huggingface_hub

        self.calls.append({"repo_id": repo_id, "local_files_only": local_files_only, "allow_patterns": allow_patterns,
                           "revision": revision, "token": token})
        snapshot = self.root / repo_id.replace("/", "--") / (revision or "main")
        if local_files_only:
            if not snapshot.is_dir():
                raise huggingface_hub.errors.LocalEntryNotFoundError("not in the cache")
            return str(snapshot)
        source = self.repos[repo_id]
        for file in sorted(p for p in source.rglob("*") if p.is_file()):
            rel = file.relative_to(source).as_posix()
            wanted = allow_patterns is None or any(fnmatch.fnmatch(rel, pattern) for pattern in allow_patterns)
            if wanted and not (snapshot / rel).exists():
                (snapshot / rel).parent.mkdir(parents=True, exist_ok=True)
                (snapshot / rel).write_bytes(file.read_bytes())
                self.fetched.append(rel)
        snapshot.mkdir(parents=True, exist_ok=True)
        return str(snapshot)
