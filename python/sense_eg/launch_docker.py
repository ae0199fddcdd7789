"""Starts a Sense kernel container for Enterprise Gateway's Docker process proxy.

EG runs this (the kernelspec's argv, on EG's host) with the kernel's environment; it creates one
container from KERNEL_IMAGE and exits. Unlike EG's own ``launch_docker.py`` it

* turns the size into real limits: ``KERNEL_CPUS_LIMIT``/``KERNEL_CPUS`` → CFS quota (period
  100 ms; a quota, not ``NanoCpus``, so a size may ask for more CPUs than this host has, as on a
  cluster node), ``KERNEL_MEMORY_LIMIT``/``KERNEL_MEMORY`` → memory limit with no swap on top;
* passes the kernel environment and the launcher arguments on the container's **stdin** (one JSON
  document, read once by the image's entry point, ``container-entry.js``), so neither the Sense
  token nor anything else appears in ``docker inspect`` (Config.Env, Config.Cmd, Args) or in any
  process's argv. EG's own launcher copies its whole environment into Config.Env, EG's auth token
  included; here only ``KERNEL_*`` and the names EG itself lets cross (``EG_CLIENT_ENVS``) go in;
* uses the host network unless EG_DOCKER_NETWORK names another one, never Docker's default bridge;
* mounts the project home (``SENSE_PROJECT_HOME``, else ``KERNEL_WORKING_DIR``) at the same path,
  only when it lies under a ``--mount-root`` the kernelspec names (the client chooses the folder;
  the administrator chooses where folders may come from);
* runs as ``KERNEL_UID:KERNEL_GID`` (EG refuses the prohibited ids before this runs), with an init
  process, no new privileges, all capabilities dropped, removed when it exits.

Arguments are EG's (``--kernel-id``, ``--port-range``, ``--response-address``, ``--public-key``)
plus ``--kernel-name sense-ts|sense-js``, ``--mount-root DIR`` (repeatable) and ``--image NAME``
(refuse any other image, e.g. a client's ``KERNEL_IMAGE``). Exit status 0
when the container started; 2 for bad input (nothing created); 1 when Docker refused (whatever
was created is removed).
"""

import argparse
import json
import os
import re
import socket
import sys

KERNEL_NAMES = ("sense-ts", "sense-js")
CPU_PERIOD_US = 100_000
MEMORY_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "ki": 1024, "mi": 1024**2, "gi": 1024**3}
# Names that never cross, even when allow-listed: EG's own settings and secrets.
NEVER = re.compile(r"^(EG_|JUPYTER_GATEWAY_)")
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class BadInput(Exception):
    """A value EG or the client passed that this launcher refuses."""


def parse_cpus(value):
    """'2' → 2.0, '500m' → 0.5; refuses anything else, and 0."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(m?)", value.strip())
    if not m:
        raise BadInput(f"bad CPU value {value!r}")
    cpus = float(m.group(1)) / (1000 if m.group(2) else 1)
    if cpus <= 0:
        raise BadInput(f"CPU value {value!r} is not positive")
    return cpus


def parse_memory(value):
    """Kubernetes quantities ('2048Mi', '2Gi', '512M', bytes) → bytes; refuses anything else."""
    m = re.fullmatch(r"(\d+)([KMG]i?|[kmg]i?)?", value.strip())
    if not m:
        raise BadInput(f"bad memory value {value!r}")
    n = int(m.group(1)) * MEMORY_UNITS[(m.group(2) or "").lower()]
    if n < 6 * 1024**2:  # Docker's own minimum
        raise BadInput(f"memory value {value!r} is below Docker's minimum of 6 MiB")
    return n


def kernel_env(environ):
    """The environment the kernel gets: KERNEL_* and the names EG_CLIENT_ENVS lets cross."""
    allowed = {n.strip() for n in environ.get("EG_CLIENT_ENVS", "").split(",") if n.strip()}
    return {k: v for k, v in environ.items() if (k.startswith("KERNEL_") or k in allowed) and not NEVER.match(k)}


def limits(environ):
    """Docker host-config limits from the size's KERNEL_* variables (none when unsized)."""
    out = {}
    cpus = environ.get("KERNEL_CPUS_LIMIT") or environ.get("KERNEL_CPUS")
    if cpus:
        out["cpu_period"] = CPU_PERIOD_US
        out["cpu_quota"] = max(1000, round(parse_cpus(cpus) * CPU_PERIOD_US))
    memory = environ.get("KERNEL_MEMORY_LIMIT") or environ.get("KERNEL_MEMORY")
    if memory:
        out["mem_limit"] = parse_memory(memory)
        out["memswap_limit"] = out["mem_limit"]  # no swap beyond the limit
    return out


def project_mounts(environ, roots):
    """Bind mounts for the project home and working folder, when they lie under an allowed root."""
    wanted = [p for p in (environ.get("SENSE_PROJECT_HOME"), environ.get("KERNEL_WORKING_DIR")) if p]
    if not wanted or not roots:
        return {}
    real_roots = [os.path.realpath(r) for r in roots]
    binds = {}
    for p in wanted:
        real = os.path.realpath(p)
        if not os.path.isdir(real):
            raise BadInput(f"project folder {p!r} does not exist on the Docker host")
        if not any(real == r or real.startswith(r.rstrip("/") + "/") for r in real_roots):
            raise BadInput(f"project folder {p!r} is outside the allowed mount roots")
        if not any(real == b or real.startswith(b.rstrip("/") + "/") for b in binds):
            binds[real] = {"bind": real, "mode": "rw"}
    return binds


def parse_args(argv):
    """EG's launcher arguments plus ours; both EG spellings of its own."""
    p = argparse.ArgumentParser(prog="launch_docker.py")
    for name in ("kernel-id", "port-range", "response-address", "public-key"):
        p.add_argument(f"--{name}", dest=name.replace("-", "_"))
        p.add_argument(f"--RemoteProcessProxy.{name}", dest="rpp_" + name.replace("-", "_"))
    p.add_argument("--kernel-name", choices=KERNEL_NAMES, default="sense-ts")
    p.add_argument("--mount-root", action="append", default=[])
    p.add_argument("--image", help="the only image this kernelspec runs (a client's KERNEL_IMAGE cannot change it)")
    p.add_argument("--spark-context-initialization-mode", choices=("none",), default="none")
    p.add_argument("--RemoteProcessProxy.spark-context-initialization-mode", dest="rpp_spark", choices=("none",), default="none")
    a = p.parse_args(argv)
    for name in ("kernel_id", "port_range", "response_address", "public_key"):
        setattr(a, name, getattr(a, name) or getattr(a, "rpp_" + name))
    if not a.kernel_id or not ID.match(a.kernel_id):
        raise BadInput("--kernel-id is missing or not an id")
    if not a.public_key:
        raise BadInput("--public-key is required")
    return a


def container_spec(args, environ):
    """Everything needed to create the container, validated; no Docker call."""
    image = environ.get("KERNEL_IMAGE")
    if not image:
        raise BadInput("KERNEL_IMAGE is not set (the kernelspec's process_proxy config image_name)")
    # KERNEL_* variables come from the client, and EG lets a client's KERNEL_IMAGE override the
    # kernelspec's image: with --image, only that image runs.
    if args.image and image != args.image:
        raise BadInput(f"image {image!r} is not this kernelspec's image")
    uid, gid = environ.get("KERNEL_UID", "1000"), environ.get("KERNEL_GID", "100")
    if not (uid.isdigit() and gid.isdigit()):
        raise BadInput("KERNEL_UID and KERNEL_GID must be numbers")
    network = environ.get("EG_DOCKER_NETWORK", "host") or "host"
    if network == "bridge":
        raise BadInput("Sense kernels do not use Docker's default bridge: set EG_DOCKER_NETWORK to host or a network of your own")
    env = kernel_env(environ)
    if network == "host":
        # the kernel's sockets on the host's loopback, where EG connects (docker_proxy.kernel_ip)
        env["SENSE_KERNEL_IP"] = environ.get("SENSE_DOCKER_KERNEL_IP", "127.0.0.1")
    launcher_argv = ["--kernel-id", args.kernel_id, "--public-key", args.public_key, "--kernel-name", args.kernel_name]
    if args.port_range:
        launcher_argv += ["--port-range", args.port_range]
    if args.response_address:
        launcher_argv += ["--response-address", args.response_address]
    workdir = environ.get("KERNEL_WORKING_DIR")
    binds = project_mounts(environ, args.mount_root)
    return {
        "image": image,
        "name": f"sense-{args.kernel_id}",
        "user": f"{uid}:{gid}",
        "workdir": os.path.realpath(workdir) if workdir and binds else None,
        "labels": {"kernel_id": args.kernel_id, "component": "kernel", "app": "enterprise-gateway", "sense.kernel": args.kernel_name},
        "network": network,
        "limits": limits(environ),
        "binds": binds,
        "stdin": json.dumps({"argv": launcher_argv, "env": env}).encode() + b"\n",
    }


def start(spec):
    """Creates the container, attaches its stdin, starts it, sends the document, detaches."""
    import docker  # only here: the pure parts above need no Docker client

    api = docker.from_env().api
    host_config = api.create_host_config(
        network_mode=spec["network"],
        auto_remove=True,
        init=True,
        binds=spec["binds"] or None,
        security_opt=["no-new-privileges"],
        cap_drop=["ALL"],
        pids_limit=4096,
        **spec["limits"],
    )
    # detach=False + stdin_open=True: OpenStdin with StdinOnce, so stdin closes when we detach
    container = api.create_container(
        spec["image"], name=spec["name"], user=spec["user"], labels=spec["labels"], working_dir=spec["workdir"],
        detach=False, stdin_open=True, host_config=host_config,
    )
    cid = container["Id"]
    try:
        sock = api.attach_socket(cid, params={"stdin": 1, "stream": 1})
        raw = getattr(sock, "_sock", sock)
        api.start(cid)
        raw.sendall(spec["stdin"])
        try:
            raw.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        sock.close()
    except Exception:
        try:
            api.remove_container(cid, force=True)
        except Exception:
            pass
        raise
    return cid


def main(argv=None):
    """Entry point; see the module's documentation for the exit statuses."""
    try:
        spec = container_spec(parse_args(sys.argv[1:] if argv is None else argv), dict(os.environ))
    except BadInput as e:
        print(f"[sense-docker-launch] refused: {e}", file=sys.stderr)
        return 2
    try:
        cid = start(spec)
    except Exception as e:  # Docker's errors carry no secrets: the env travels on stdin
        print(f"[sense-docker-launch] docker refused {spec['name']}: {e}", file=sys.stderr)
        return 1
    print(f"[sense-docker-launch] started {spec['name']} ({cid[:12]}) from {spec['image']}, limits {spec['limits'] or 'none'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
