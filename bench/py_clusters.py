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
        client = Client(cluster)
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


def main():
    kind, n, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    logging.basicConfig(level=logging.ERROR)
    fn = {"dask": dask_run, "ipp": ipp_run}[kind]
    seconds = [fn(n) for _ in range(runs)]
    print(json.dumps({"kind": kind, "n": n, "seconds": seconds}))


if __name__ == "__main__":
    main()
