"""A small HTTP server that runs the speculative-decoding loop in spawned worker processes.

It mimics the process layout that matters for profiling SGLang: the HTTP
process never imports torch; all model work runs in ``multiprocessing``
*spawn* children (fresh interpreters), so a profiler living only in the parent
would see nothing. ``tracekit capture`` profiles each worker separately.

    python samples/serve.py --workers 2 --requests 4          # serve, send 4 requests from a client thread, exit
    python samples/serve.py --workers 2 --port 8311            # serve until POST /shutdown
    python samples/serve.py --client http://127.0.0.1:8311 --requests 4 --shutdown

Endpoints (JSON): ``POST /generate {"steps": N, "draft_len": K, "accept": [3, 0]}`` -> the loop's
statistics; ``GET /workers`` -> worker pids and liveness; ``POST /shutdown``.
Requests go round-robin to live workers; a dead worker is skipped, so killing
one (the fault tests do) leaves the others serving.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import os
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def worker_main(inq: Any, outq: Any, threads: int, vocab: int) -> None:
    """Worker process: build the models once (imports torch here only), then serve requests until None."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import torch

    import spec_decode

    if threads:
        torch.set_num_threads(threads)
    decoders: dict[int, Any] = {}
    outq.put(("ready", os.getpid(), None))
    while True:
        item = inq.get()
        if item is None:
            return
        rid, req = item
        try:
            k = int(req.get("draft_len", 4))
            accept = tuple(int(x) for x in req.get("accept") or ())  # planted acceptance (spec_decode --accept)
            if (k, accept) not in decoders:
                decoders[k, accept] = spec_decode.SpecDecoder(
                    spec_decode.Config(vocab=vocab, draft_len=k, seed=int(req.get("seed", 0)), accept=accept))
            # each step records tracekit.count(drafted, accepted, batch_size, tokens) inside SpecDecoder.run
            outq.put((rid, os.getpid(), decoders[k, accept].run(int(req.get("steps", 4)))))
        except Exception as e:  # report to the client instead of dying silently
            outq.put((rid, os.getpid(), {"error": repr(e)}))


class Pool:
    """Spawned workers, one input queue each, and one result queue; thread-safe dispatch."""

    def __init__(self, n: int, threads: int, vocab: int) -> None:
        ctx = mp.get_context("spawn")
        self.outq = ctx.Queue()
        self.inqs = [ctx.Queue() for _ in range(n)]
        self.procs = [ctx.Process(target=worker_main, args=(q, self.outq, threads, vocab), name=f"worker{i}") for i, q in enumerate(self.inqs)]
        for p in self.procs:
            p.start()
        self.results: dict[int, Any] = {}
        self.cond = threading.Condition()
        self.ids = itertools.count(1)
        self.rr = itertools.count()
        ready = 0
        while ready < n:
            tag, _, _ = self.outq.get(timeout=300)
            ready += tag == "ready"
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        while True:
            try:
                rid, pid, res = self.outq.get()
            except (EOFError, OSError):
                return
            with self.cond:
                self.results[rid] = res
                self.cond.notify_all()

    def submit(self, req: dict[str, Any], timeout: float = 300) -> Any:
        live = [i for i, p in enumerate(self.procs) if p.is_alive()]
        if not live:
            raise RuntimeError("no live worker")
        i = live[next(self.rr) % len(live)]
        rid = next(self.ids)
        self.inqs[i].put((rid, req))
        with self.cond:
            if not self.cond.wait_for(lambda: rid in self.results or not self.procs[i].is_alive(), timeout):
                raise TimeoutError("worker timed out")
            if rid not in self.results:
                raise RuntimeError(f"worker {self.procs[i].pid} died")
            return self.results.pop(rid)

    def workers(self) -> list[dict[str, Any]]:
        return [{"name": p.name, "pid": p.pid, "alive": p.is_alive()} for p in self.procs]

    def close(self) -> None:
        """Ask live workers to exit normally (so their exit hooks run), then reap them."""
        for q, p in zip(self.inqs, self.procs):
            if p.is_alive():
                q.put(None)
        for p in self.procs:
            p.join(timeout=60)
            if p.is_alive():
                p.terminate()
                p.join()


def make_server(pool: Pool, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: Any) -> None:  # quiet: tests parse our stdout
            pass

        def _send(self, code: int, obj: Any) -> None:
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/workers":
                self._send(200, pool.workers())
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            req = json.loads(self.rfile.read(n) or b"{}")
            if self.path == "/generate":
                try:
                    self._send(200, pool.submit(req))
                except Exception as e:
                    self._send(503, {"error": str(e)})
            elif self.path == "/shutdown":
                self._send(200, {"ok": True})
                threading.Thread(target=server.shutdown, daemon=True).start()
            else:
                self._send(404, {"error": "not found"})

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    return server


def post(url: str, obj: Any, timeout: float = 300) -> Any:
    req = urllib.request.Request(url, data=json.dumps(obj).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def client(url: str, requests: int, steps: int, draft_len: int, shutdown: bool, accept: list[int] | None = None) -> list[Any]:
    """Send ``requests`` generate requests in sequence; optionally shut the server down."""
    body: dict[str, Any] = {"steps": steps, "draft_len": draft_len}
    if accept:
        body["accept"] = accept
    out = [post(f"{url}/generate", body) for _ in range(requests)]
    for r in out:
        print(json.dumps(r), flush=True)
    if shutdown:
        post(f"{url}/shutdown", {})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--port", type=int, default=0, help="0: any free port")
    ap.add_argument("--port-file", help="write the chosen port here once serving (for scripts and tests)")
    ap.add_argument("--requests", type=int, default=0, help="with no --client: send this many requests from a thread, then exit")
    ap.add_argument("--steps", type=int, default=4, help="decode steps per request")
    ap.add_argument("--draft-len", type=int, default=4)
    ap.add_argument("--accept", default="", help="planted accepted draft tokens per step, e.g. 3,0,4 (see spec_decode.py)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--client", metavar="URL", help="client mode: send requests to a running server")
    ap.add_argument("--shutdown", action="store_true", help="client mode: POST /shutdown afterwards")
    a = ap.parse_args(argv)
    accept = [int(x) for x in a.accept.split(",") if x.strip()]
    if a.client:
        client(a.client.rstrip("/"), a.requests, a.steps, a.draft_len, a.shutdown, accept)
        return 0
    pool = Pool(a.workers, a.threads, a.vocab)
    server = make_server(pool, a.port)
    port = server.server_address[1]
    print(f"serve: http://127.0.0.1:{port} workers {[w['pid'] for w in pool.workers()]}", flush=True)
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.replace(tmp, a.port_file)
    if a.requests:
        threading.Thread(target=client, args=(f"http://127.0.0.1:{port}", a.requests, a.steps, a.draft_len, True, accept), daemon=True).start()
    try:
        server.serve_forever()
    finally:
        server.server_close()
        pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
