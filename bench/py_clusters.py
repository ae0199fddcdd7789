"""Launch latency of Dask LocalCluster(n_workers=N) and ipyparallel Cluster(n=N), each + first task.

Run from the project's .venv by bench/bench.ts: `python bench/py_clusters.py dask|ipp N RUNS`.
Prints one JSON object: {"kind": ..., "n": N, "seconds": [...]}. Every cluster is closed in a
finally block, so a failed run leaves nothing behind.
"""
import json
import logging
import sys
import time


def one_task():
    return 1


def dask_run(n):
    from dask.distributed import Client, LocalCluster

    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        # A long connect timeout: 64 worker processes on a loaded 2-core machine take longer
        # than the default 30 s, and a timeout would leave no figure to compare with.
        client = Client(cluster, timeout=600)
        try:
            client.wait_for_workers(n)
            assert client.submit(one_task, pure=False).result() == 1
            return time.perf_counter() - t0
        finally:
            client.close()
    finally:
        cluster.close()


def ipp_run(n):
    import ipyparallel as ipp

    t0 = time.perf_counter()
    cluster = ipp.Cluster(n=n, log_level=logging.ERROR)
    try:
        rc = cluster.start_and_connect_sync()
        try:
            rc.wait_for_engines(n, timeout=120)
            assert rc[:].apply_sync(one_task) == [1] * n
            return time.perf_counter() - t0
        finally:
            rc.close()
    finally:
        cluster.stop_cluster_sync()


def inc(x):
    return x + 1


def median(xs):
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def round_trips(call, warmup=20, count=200):
    """Median seconds of one blocking call (after a warm-up)."""
    for _ in range(warmup):
        call()
    xs = []
    for _ in range(count):
        t = time.perf_counter()
        call()
        xs.append(time.perf_counter() - t)
    return median(xs)


def dask_remote(n, runs, items):
    """Per run: one submit(f).result() round trip (median ms, 1 worker), then map+gather of `items` on n workers."""
    from dask.distributed import Client, LocalCluster

    out = {"rt_ms": [], "map_s": []}
    for workers, key in ((1, "rt_ms"), (n, "map_s")):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        try:
            client = Client(cluster)
            try:
                client.wait_for_workers(workers)
                for _ in range(runs):
                    if key == "rt_ms":
                        out[key].append(1000 * round_trips(lambda: client.submit(one_task, pure=False).result()))
                    else:
                        t = time.perf_counter()
                        res = client.gather(client.map(inc, range(items), pure=False))
                        out[key].append(time.perf_counter() - t)
                        assert res[-1] == items
            finally:
                client.close()
        finally:
            cluster.close()
    return out


def ipp_remote(n, runs, items):
    """Per run: one apply_sync(lambda: 1) round trip (median ms, one engine), then LoadBalancedView.map_sync of `items` on n engines."""
    import ipyparallel as ipp

    out = {"rt_ms": [], "map_s": []}
    cluster = ipp.Cluster(n=n, log_level=logging.ERROR)
    try:
        rc = cluster.start_and_connect_sync()
        try:
            rc.wait_for_engines(n, timeout=120)
            view = rc[0]
            lb = rc.load_balanced_view()
            for _ in range(runs):
                out["rt_ms"].append(1000 * round_trips(lambda: view.apply_sync(lambda: 1)))
                t = time.perf_counter()
                res = lb.map_sync(inc, range(items))
                out["map_s"].append(time.perf_counter() - t)
                assert res[-1] == items
        finally:
            rc.close()
    finally:
        cluster.stop_cluster_sync()
    return out


MIB = 1 << 20


def first_of(a):
    return float(a[0]) + a.size


def timed(f):
    t = time.perf_counter()
    r = f()
    return time.perf_counter() - t, r


def dask_data(runs):
    """Per run: scatter(broadcast=True) of 256 MiB float64 to 4 and to 8 workers, scatter of 8 parts and gather, map over 64 items of 8 MiB."""
    import numpy as np
    from dask.distributed import Client, LocalCluster

    value = np.arange(256 * MIB // 8, dtype=np.float64)
    out = {"bcast4_s": [], "bcast8_s": [], "scatter8_s": [], "gather8_s": [], "map64_s": []}
    for workers in (4, 8):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, memory_limit=0)
        try:
            client = Client(cluster)
            try:
                client.wait_for_workers(workers)
                for _ in range(runs):
                    dt, fut = timed(lambda: client.scatter(value, broadcast=True, hash=False))
                    out["bcast%d_s" % workers].append(dt)
                    del fut
                    if workers == 8:
                        parts = np.array_split(value, 8)
                        dt, futs = timed(lambda: client.scatter(parts, hash=False))
                        out["scatter8_s"].append(dt)
                        dt, back = timed(lambda: np.concatenate(client.gather(futs)))
                        out["gather8_s"].append(dt)
                        assert back.size == value.size
                        del futs, back
                        items = [np.full(MIB, i, dtype=np.float64) for i in range(64)]
                        dt, res = timed(lambda: client.gather(client.map(first_of, items, pure=False)))
                        out["map64_s"].append(dt)
                        assert res[-1] == 63 + MIB
            finally:
                client.close()
        finally:
            cluster.close()
    return out


def ipp_data(runs):
    """Per run: dview.push of 256 MiB float64 to 4 and to 8 engines, dview.scatter over 8 and gather."""
    import ipyparallel as ipp
    import numpy as np

    value = np.arange(256 * MIB // 8, dtype=np.float64)
    out = {"bcast4_s": [], "bcast8_s": [], "scatter8_s": [], "gather8_s": [], "map64_s": []}
    cluster = ipp.Cluster(n=8, log_level=logging.ERROR)
    try:
        rc = cluster.start_and_connect_sync()
        try:
            rc.wait_for_engines(8, timeout=300)
            for _ in range(runs):
                out["bcast4_s"].append(timed(lambda: rc[:4].push({"x": value}, block=True))[0])
                out["bcast8_s"].append(timed(lambda: rc[:].push({"x": value}, block=True))[0])
                rc[:].push({"x": None}, block=True)
                out["scatter8_s"].append(timed(lambda: rc[:].scatter("part", value, block=True))[0])
                dt, back = timed(lambda: rc[:].gather("part", block=True))
                out["gather8_s"].append(dt)
                assert back.size == value.size
        finally:
            rc.close()
    finally:
        cluster.stop_cluster_sync()
    return out


def main():
    kind, n, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    logging.basicConfig(level=logging.ERROR)
    if kind in ("dask-data", "ipp-data"):
        fn = dask_data if kind == "dask-data" else ipp_data
        print(json.dumps({"kind": kind, **fn(runs)}))
        return
    if kind in ("dask-remote", "ipp-remote"):
        items = int(sys.argv[4])
        fn = dask_remote if kind == "dask-remote" else ipp_remote
        print(json.dumps({"kind": kind, "n": n, **fn(n, runs, items)}))
        return
    fn = {"dask": dask_run, "ipp": ipp_run}[kind]
    seconds = [fn(n) for _ in range(runs)]
    print(json.dumps({"kind": kind, "n": n, "seconds": seconds}))


if __name__ == "__main__":
    main()
