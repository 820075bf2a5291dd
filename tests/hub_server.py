"""A loopback stand-in for the Hugging Face Hub: its upload API, recording what arrives, and dataset repositories to
read.

Uploads: it answers the three calls ``create_repo`` and ``upload_folder`` make: create the repository, ask how each
file should be uploaded (always "regular": inline in the commit), and the commit itself (NDJSON, base64 contents).
Downloads: ``datasets.load_dataset("<repo>", streaming=True)`` asks for the repository's info (its commit), lists
its tree, looks for a few optional files (README.md, a loading script), then downloads the data files it reads;
``hub.datasets[repo] = {path: bytes}`` serves a repository, and ``hub.downloads`` records each data file fetched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


COMMIT = "0123456789abcdef" * 2 + "01234567"  # the one revision every served repository is at


def _oid(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _tree(files: dict[str, bytes], folder: str, recursive: bool) -> list[dict]:
    """The Hub's tree listing of ``folder`` ("" for the root): its files and folders, or everything below it."""
    prefix = folder.strip("/") + "/" if folder.strip("/") else ""
    entries: dict[str, dict] = {}
    for name, data in sorted(files.items()):
        if not name.startswith(prefix):
            continue
        parts = name[len(prefix):].split("/")
        for depth in range(1, len(parts) if recursive else min(len(parts), 2)):
            below = prefix + "/".join(parts[:depth])
            entries.setdefault(below, {"type": "directory", "path": below, "size": 0, "oid": "0" * 40})
        if recursive or len(parts) == 1:
            entries[name] = {"type": "file", "path": name, "size": len(data), "oid": _oid(data)}
    return list(entries.values())


class LoopbackHub:
    """``with LoopbackHub() as hub:`` serves on 127.0.0.1; ``hub.endpoint`` goes in ``HF_ENDPOINT``."""

    def __init__(self) -> None:
        self.repos: list[str] = []
        self.commits: list[dict] = []  # {"repo": ..., "message": ..., "files": {path: bytes}}
        self.authorizations: set[str] = set()
        self.datasets: dict[str, dict[str, bytes]] = {}
        self.downloads: list[str] = []  # "<repo>/<path>" of every file body served
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _reply(self, payload: dict | list, status: int = 200, headers: dict | None = None) -> None:
                self._send(json.dumps(payload).encode(), "application/json", status, headers)

            def _send(self, body: bytes, content_type: str, status: int = 200, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                path, query = urllib.parse.unquote(url.path), urllib.parse.parse_qs(url.query)
                for repo, files in hub.datasets.items():
                    if path in (f"/api/datasets/{repo}", f"/api/datasets/{repo}/revision/{COMMIT}",
                                f"/api/datasets/{repo}/revision/main"):
                        return self._reply({"id": repo, "sha": COMMIT, "private": False, "cardData": {},
                                            "siblings": [{"rfilename": name} for name in files]})
                    tree = f"/api/datasets/{repo}/tree/{COMMIT}"
                    if path == tree or path.startswith(tree + "/"):
                        recursive = query.get("recursive", ["false"])[0] == "true"
                        return self._reply(_tree(files, path[len(tree) + 1:], recursive))
                    for revision in (COMMIT, "main"):
                        name = path.removeprefix(f"/datasets/{repo}/resolve/{revision}/")
                        if name != path and name in files:
                            if self.command == "GET":
                                hub.downloads.append(f"{repo}/{name}")
                            return self._send(files[name], "application/octet-stream", headers={
                                "X-Repo-Commit": COMMIT, "ETag": f'"{_oid(files[name])}"'})
                self._reply({"error": "Entry not found"}, 404, {"X-Error-Code": "EntryNotFound"})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hub.authorizations.add(self.headers.get("Authorization", ""))
                if self.path == "/api/repos/create":
                    request = json.loads(body)
                    repo = f"{request.get('organization') or 'user'}/{request['name']}"
                    hub.repos.append(repo)
                    return self._reply({"url": f"{hub.endpoint}/{repo}", "name": repo})
                if self.path.startswith("/api/validate-yaml"):  # the client checks the model card's metadata
                    return self._reply({"errors": [], "warnings": []})
                parts = self.path.split("?")[0].split("/")  # /api/models/<ns>/<name>/<verb>/<revision>
                repo, verb = f"{parts[3]}/{parts[4]}", parts[5]
                if verb == "preupload":
                    files = json.loads(body)["files"]
                    return self._reply(
                        {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
                    )
                if verb == "commit":
                    lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                    files = {
                        line["value"]["path"]: base64.b64decode(line["value"]["content"])
                        for line in lines if line["key"] == "file"
                    }
                    header = next(line["value"] for line in lines if line["key"] == "header")
                    hub.commits.append({"repo": repo, "message": header["summary"], "files": files})
                    return self._reply(
                        {"commitUrl": f"{hub.endpoint}/{repo}/commit/{'0' * 40}", "commitOid": "0" * 40,
                         "pullRequestUrl": None}
                    )
                self._reply({"error": f"unexpected {self.path}"}, 404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> LoopbackHub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
