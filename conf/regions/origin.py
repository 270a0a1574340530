#!/usr/bin/env python3
"""A small origin for the three-region demo: answers every request with the region it runs in
and the member it was asked about, and logs one line per request.

    python3 conf/regions/origin.py --region us-east-1 --port 9081
"""
import argparse
import http.server
import json
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--region", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--address", default="127.0.0.1")
    args = parser.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            body = json.dumps({
                "origin_region": args.region,
                "member": self.headers.get("x-member-id") or "",
                "path": self.path,
                "forwarded_for": self.headers.get("x-forwarded-for") or "",
            }).encode() + b"\n"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = answer

        def log_message(self, fmt, *fargs):
            sys.stderr.write("%s origin %s\n" % (args.region, fmt % fargs))

    server = http.server.ThreadingHTTPServer((args.address, args.port), Handler)
    server.daemon_threads = True
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
