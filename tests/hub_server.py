"""A loopback stand-in for the Hugging Face Hub's upload API, recording what arrives.

It answers the three calls ``create_repo`` and ``upload_folder`` make: create the repository, ask how each file
should be uploaded (always "regular": inline in the commit), and the commit itself (NDJSON, base64 contents).
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackHub:
    """``with LoopbackHub() as hub:`` serves on 127.0.0.1; ``hub.endpoint`` goes in ``HF_ENDPOINT``."""

    def __init__(self) -> None:
        self.repos: list[str] = []
        self.commits: list[dict] = []  # {"repo": ..., "message": ..., "files": {path: bytes}}
        self.authorizations: set[str] = set()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _reply(self, payload: dict, status: int = 200) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

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
