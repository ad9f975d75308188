#!/usr/bin/env bash
# Run a command in a fresh network namespace that has only the loopback interface (Ray listens on every
# interface of a machine; its test traffic must stay on loopback). Needs root, or unprivileged user
# namespaces (then --map-root-user). Ray's session files under /tmp/ray are removed afterwards.
set -uo pipefail
flag=""
[ "$(id -u)" = 0 ] || flag="--map-root-user"
had_ray_tmp=0; [ -e /tmp/ray ] && had_ray_tmp=1
unshare --net $flag sh -c 'ip link set lo up && exec "$@"' sh "$@"
rc=$?
[ "$had_ray_tmp" = 1 ] || rm -rf /tmp/ray
exit $rc
