#!/usr/bin/env python3
"""Job pick-up latency: from a job's request to the moment the runner that
owns its container has claimed it (its `running` event), for two sides
measured interleaved in one run.

    pickup.py JOBS QUEUE_API:EVENTS_API:CONTAINER_ID[:NAME] ...

Each side queues configure jobs (a PATCH of the hostname on a stopped
container) through QUEUE_API and watches EVENTS_API's event stream, which
the claiming node publishes at once. Sides take turns in blocks of 10 jobs;
each job is let finish before the next. Prints p50 and p99 per side, in ms.
"""
import json
import sys
import threading
import time
import urllib.request


class Stream(threading.Thread):
    """Reads one berth's /v1/events; records when each job was seen in a
    given status."""

    def __init__(self, api):
        super().__init__(daemon=True)
        self.response = urllib.request.urlopen(api + "/events", timeout=600)
        self.seen = {}
        self.cond = threading.Condition()

    def run(self):
        event, data = None, []
        for raw in self.response:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif line == "":
                if event == "job" and data:
                    job = json.loads("\n".join(data))
                    with self.cond:
                        self.seen[(job["id"], job["status"])] = time.monotonic()
                        self.cond.notify_all()
                event, data = None, []

    def wait_for(self, job_id, statuses, timeout=60):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for status in statuses:
                    if (job_id, status) in self.seen:
                        return status, self.seen[(job_id, status)]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit(f"job {job_id}: no {statuses} event in {timeout} s")
                self.cond.wait(left)


def patch(api, container, hostname):
    body = json.dumps({"parameters": {"hostname": hostname}}).encode()
    request = urllib.request.Request(
        f"{api}/containers/{container}", data=body, method="PATCH",
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["job_id"]


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    jobs = int(sys.argv[1])
    sides = []
    for spec in sys.argv[2:]:
        parts = spec.split("|")
        queue_api, events_api, container, name = parts[0], parts[1], parts[2], parts[3]
        stream = Stream(events_api)
        stream.start()
        sides.append({"name": name, "queue": queue_api, "stream": stream,
                      "container": container, "latencies": []})
    time.sleep(0.5)
    count = 0
    while count < jobs:
        for side in sides:
            for _ in range(10):
                sent = time.monotonic()
                job = patch(side["queue"], side["container"], f"h{count}-{len(side['latencies'])}")
                status, claimed = side["stream"].wait_for(job, ["running", "done", "failed"])
                side["stream"].wait_for(job, ["done", "failed"])
                side["latencies"].append((claimed - sent) * 1000)
        count += 10
    for side in sides:
        values = side["latencies"]
        print(f"{side['name']} {len(values)} {percentile(values, 50):.2f} {percentile(values, 99):.2f}")


if __name__ == "__main__":
    main()
