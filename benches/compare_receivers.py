#!/usr/bin/env python3
"""klaxon vs Alertmanager 0.25: CPU per notification, per receiver integration.

For each integration (webhook, slack, pagerduty, opsgenie, victorops, telegram,
discord, webex, wechat, sns) and each peer in turn, the same alertmanager.yml
(one receiver with that one integration, default templates, URL pointing at a
sink in this process answering 200 / the API's success body;
group_by ['...'] so every alert is its own notification, group_wait 0s) is
loaded; --alerts alerts are POSTed in batches of 50 and the script waits until
the sink has received one request per alert. CPU = user+system time of the
peer's process (/proc/PID/stat) over that window, divided by the number of
notifications (it includes the API intake of the alerts, the same work for
both). --runs rounds alternate the peers; medians and the klaxon/Alertmanager
ratio are printed.

  cargo build --release --bin klaxon && cp target/release/klaxon /tmp/klaxon
  python3 benches/compare_receivers.py --klaxon /tmp/klaxon --runs 3

--baseline BIN compares against another klaxon build (before/after a
change) instead of Alertmanager.

Alertmanager runs with gossip off (../shared/reference/PEERS-NOTES.md point 2).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_alertmanager import start_peer  # noqa: E402

KINDS = ["webhook", "slack", "pagerduty", "opsgenie", "victorops", "telegram",
         "discord", "webex", "wechat", "sns"]


def receiver(kind, s):
    return {
        "webhook": f"webhook_configs:\n  - url: {s}/webhook/\n",
        "slack": f"slack_configs:\n  - api_url: {s}/slack/hook\n",
        "pagerduty": f"pagerduty_configs:\n  - routing_key: k\n    url: {s}/pagerduty/enqueue\n",
        "opsgenie": f"opsgenie_configs:\n  - api_key: k\n    api_url: {s}/opsgenie/\n",
        "victorops": f"victorops_configs:\n  - api_key: k\n    routing_key: r\n    api_url: {s}/victorops/\n",
        "telegram": f"telegram_configs:\n  - bot_token: '1:x'\n    chat_id: 5\n    api_url: {s}/telegram\n",
        "discord": f"discord_configs:\n  - webhook_url: {s}/discord/hook\n",
        "webex": f"webex_configs:\n  - room_id: r\n    api_url: {s}/webex/messages\n"
                 "    http_config:\n      authorization:\n        credentials: t\n",
        "wechat": f"wechat_configs:\n  - api_secret: s\n    corp_id: c\n    api_url: {s}/wechat/\n",
        "sns": f"sns_configs:\n  - api_url: {s}/sns/\n    topic_arn: arn:aws:sns:us-east-2:1:t\n"
               "    sigv4:\n      region: us-east-2\n      access_key: AKID\n      secret_key: s\n",
    }[kind]


def config(kind, sink_url):
    body = receiver(kind, sink_url)
    indented = "".join("    " + line + "\n" for line in body.splitlines())
    return ("route:\n  receiver: r\n  group_by: ['...']\n  group_wait: 0s\n"
            "  group_interval: 1h\n  repeat_interval: 1h\n"
            f"receivers:\n  - name: r\n{indented}")


class Sink:
    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()
        sink = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                p = self.path
                if "/telegram/" in p:
                    body = b'{"ok":true,"result":{"message_id":1,"chat":{"id":5}}}'
                elif p.split("?")[0].endswith("/gettoken"):
                    body = b'{"access_token":"t","errcode":0}'
                elif "/wechat/" in p:
                    body = b'{"errcode":0,"errmsg":"ok"}'
                elif "/sns/" in p:
                    body = (b'<PublishResponse><PublishResult><MessageId>1</MessageId>'
                            b'</PublishResult><ResponseMetadata><RequestId>r</RequestId>'
                            b'</ResponseMetadata></PublishResponse>')
                else:
                    body = b"{}"
                if not p.split("?")[0].endswith("/gettoken"):
                    with sink.lock:
                        sink.count += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = _answer
            do_GET = _answer
            do_PUT = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        # A peer stopping mid-connection is not an error of the benchmark.
        self.server.handle_error = lambda *a: None
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def post(port, alerts):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2/alerts",
                                 data=json.dumps(alerts).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=30).read()


def run_one(peer, binary, kind, n, tag):
    sink = Sink()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "am.yml")
        with open(cfg, "w") as f:
            f.write(config(kind, sink.url))
        p, port = start_peer(peer, binary, cfg, tmp)
        try:
            time.sleep(1.0)
            c0 = cpu_seconds(p.pid)
            for i in range(0, n, 50):
                post(port, [{"labels": {"alertname": "Bench", "id": f"{tag}-{j}",
                                        "severity": "critical"},
                             "annotations": {"summary": "bench", "runbook_url": "http://rb/x"},
                             "generatorURL": "http://bench/graph"}
                            for j in range(i, min(n, i + 50))])
            t0 = time.time()
            while sink.count < n and time.time() - t0 < 120:
                time.sleep(0.05)
            c1 = cpu_seconds(p.pid)
            if sink.count < n:
                raise RuntimeError(f"{peer}/{kind}: {sink.count}/{n} notifications")
            return (c1 - c0) / n
        finally:
            p.terminate()
            p.wait()
            sink.server.shutdown()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--klaxon", required=True)
    ap.add_argument("--alertmanager", default="/usr/bin/prometheus-alertmanager")
    ap.add_argument("--baseline",
                    help="another klaxon binary (e.g. before a change) compared "
                         "instead of Alertmanager")
    ap.add_argument("--alerts", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kinds", default=",".join(KINDS))
    a = ap.parse_args()
    if a.baseline:
        other, peers = "baseline", [("baseline", "klaxon", a.baseline)]
    else:
        other, peers = "AM 0.25", [("alertmanager", "alertmanager", a.alertmanager)]
    peers.append(("klaxon", "klaxon", a.klaxon))
    print(f"{'integration':<10} {'klaxon ms/notif':>16} {other + ' ms/notif':>17} {'ratio':>7}")
    for kind in a.kinds.split(","):
        res = {name: [] for name, _, _ in peers}
        for r in range(a.runs):
            for name, peer, binary in peers:
                res[name].append(run_one(peer, binary, kind, a.alerts, f"{kind}{r}"))
        k = statistics.median(res["klaxon"]) * 1000
        m = statistics.median(res[peers[0][0]]) * 1000
        print(f"{kind:<10} {k:>16.3f} {m:>17.3f} {k / m:>7.2f}", flush=True)


if __name__ == "__main__":
    main()
