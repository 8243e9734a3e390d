"""Capture the exact HTTP request lm-eval-harness's local-completions model
sends for a log-likelihood batch, by running its own request code against a
local socket that records the bytes and answers a canned response.

Usage: python tools/lmeval/capture_request.py   (in a venv with lm-eval[api])
Prints the request line, headers and body as JSON. server/lmeval_test.go holds
the body this printed for lm-eval 0.4.13; rerun this after upgrading lm-eval
to see whether it changed.
"""

import http.server
import json
import sys
import threading

import lm_eval
from lm_eval.models.openai_completions import LocalCompletionsAPI

captured = {}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers["Content-Length"])
        captured["path"] = self.path
        captured["headers"] = {k: v for k, v in self.headers.items()}
        captured["body"] = self.rfile.read(n).decode("utf-8")
        body = b'{"choices": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/v1/completions"
    # tokenizer_backend=None skips loading a tokenizer; the loglikelihood
    # path sends token ids, so switch tokenized requests back on, as a
    # tokenizer backend would have left them, and batch two requests.
    lm = LocalCompletionsAPI(base_url=url, model="stories260K", tokenizer_backend=None, batch_size=2)
    lm.tokenized_requests = True
    # What _loglikelihood_tokens builds: context+continuation token ids.
    inputs = [[1, 87, 104, 111, 35, 100, 101], [1, 87, 104, 111, 35, 120]]
    lm.model_call(messages=inputs, generate=False)
    srv.shutdown()
    captured["lm_eval_version"] = getattr(lm_eval, "__version__", "?")
    json.dump(captured, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
