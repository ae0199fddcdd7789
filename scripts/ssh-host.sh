#!/usr/bin/env bash
# A "remote host" for Enterprise Gateway's DistributedProcessProxy on this machine: a Linux network
# namespace (sense-h1, 10.231.0.2) joined to the root namespace by a veth pair (host side 10.231.0.1),
# running its own sshd with key auth for root. It shares the file system, so Node, the launcher and
# the project are at the same paths there. Needs root, iproute2 and Debian's openssh-server (installed
# with apt-get when missing). Idempotent.
#
#   bash scripts/ssh-host.sh        # create (or check) the host; writes .sense-ssh/host.json
#   bash scripts/ssh-host.sh down   # stop everything in the namespace, remove it and .sense-ssh/
#
# Everything lives in .sense-ssh/ (git-ignored): the client key pair, sshd's own host key and config,
# authorized_keys, and home/.ssh/{id_ed25519,known_hosts} for EG (run EG with HOME=.sense-ssh/home:
# paramiko reads ~/.ssh there and nothing under /root/.ssh is touched). Override with SENSE_SSH_NS,
# SENSE_SSH_DIR, SENSE_SSH_VETH (its peer is the name plus "p"; at most 14 characters),
# SENSE_SSH_HOST_IP and SENSE_SSH_NS_IP (the two addresses of a /30): a second host, or hosts that
# do not clash with another run's on the same machine (network namespaces and links are machine-wide).
# The namespace's default route goes to the host side, so a host reaches the other hosts' host-side
# addresses too (Enterprise Gateway's one response address, for two hosts).
set -euo pipefail
cd "$(dirname "$0")/.."
NS="${SENSE_SSH_NS:-sense-h1}"
DIR="$(realpath -m "${SENSE_SSH_DIR:-$PWD/.sense-ssh}")"
VETH="${SENSE_SSH_VETH:-veth-h1}"
PEER="${VETH}p"
HOST_IP="${SENSE_SSH_HOST_IP:-10.231.0.1}"
NS_IP="${SENSE_SSH_NS_IP:-10.231.0.2}"

down() {
  if ip netns list | grep -qw "$NS"; then
    # every process in the namespace (sshd and whatever is still running there)
    for pid in $(ip netns pids "$NS"); do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 50); do [ -z "$(ip netns pids "$NS")" ] && break; sleep 0.1; done
    for pid in $(ip netns pids "$NS"); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$NS"
  fi
  ip link del "$VETH" 2>/dev/null || true
  rm -rf "$DIR"
  echo "[ssh-host] down" >&2
}

if [ "${1:-up}" = down ]; then down; exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "[ssh-host] needs root (ip netns, sshd)" >&2; exit 1; fi
# a failed set-up leaves nothing behind
trap 'status=$?; if [ $status -ne 0 ]; then echo "[ssh-host] set-up failed: removing it" >&2; [ -f "$DIR/sshd.log" ] && tail -5 "$DIR/sshd.log" >&2; down; fi' EXIT

if [ ! -x /usr/sbin/sshd ]; then
  echo "[ssh-host] installing openssh-server" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null; }
fi

mkdir -p "$DIR/home/.ssh"
chmod 700 "$DIR" "$DIR/home" "$DIR/home/.ssh"
[ -f "$DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -C sense-eg -f "$DIR/id_ed25519"
[ -f "$DIR/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N "" -C sense-h1 -f "$DIR/ssh_host_ed25519_key"
cp "$DIR/id_ed25519.pub" "$DIR/authorized_keys"
install -m 600 "$DIR/id_ed25519" "$DIR/home/.ssh/id_ed25519"
cp "$DIR/id_ed25519.pub" "$DIR/home/.ssh/id_ed25519.pub"
echo "$NS_IP $(cut -d' ' -f1,2 "$DIR/ssh_host_ed25519_key.pub")" > "$DIR/home/.ssh/known_hosts"
cat > "$DIR/sshd_config" <<CONF
ListenAddress $NS_IP
Port 22
HostKey $DIR/ssh_host_ed25519_key
PidFile $DIR/sshd.pid
AuthorizedKeysFile $DIR/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes yes
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
MaxStartups 50:30:100
LogLevel INFO
CONF

if ! ip netns list | grep -qw "$NS"; then
  ip netns add "$NS"
fi
if ! ip link show "$VETH" >/dev/null 2>&1; then
  ip link add "$VETH" type veth peer name "$PEER" netns "$NS"
  ip addr add "$HOST_IP/30" dev "$VETH"
  ip link set "$VETH" up
  ip netns exec "$NS" ip addr add "$NS_IP/30" dev "$PEER"
  ip netns exec "$NS" ip link set "$PEER" up
  ip netns exec "$NS" ip link set lo up
  ip netns exec "$NS" ip route add default via "$HOST_IP"
fi

mkdir -p /run/sshd
if [ -f "$DIR/sshd.pid" ] && kill -0 "$(cat "$DIR/sshd.pid")" 2>/dev/null; then
  :
else
  ip netns exec "$NS" /usr/sbin/sshd -f "$DIR/sshd_config" -E "$DIR/sshd.log"
fi
# sshd answers (its banner) within 10 s
for _ in $(seq 1 100); do
  if ip netns exec "$NS" bash -c "exec 3<>/dev/tcp/$NS_IP/22 && head -c 4 <&3" 2>/dev/null | grep -q SSH; then break; fi
  sleep 0.1
done
ssh -q -i "$DIR/id_ed25519" -o UserKnownHostsFile="$DIR/home/.ssh/known_hosts" -o StrictHostKeyChecking=yes \
  -o BatchMode=yes -o ConnectTimeout=10 "root@$NS_IP" true \
  || { echo "[ssh-host] ssh root@$NS_IP failed (see $DIR/sshd.log)" >&2; exit 1; }
cat > "$DIR/host.json" <<JSON
{"netns": "$NS", "hostIp": "$HOST_IP", "remoteIp": "$NS_IP", "user": "root", "home": "$DIR/home", "sshdPidFile": "$DIR/sshd.pid"}
JSON
echo "[ssh-host] up: root@$NS_IP in netns $NS (host side $HOST_IP), EG HOME=$DIR/home" >&2
