#!/usr/bin/env bash
# Prints a Prometheus file_sd target list with every node of the swarm, read
# from a manager through the docker CLI (DOCKER_HOST as usual):
#
#   deploy/prometheus/targets.sh > deploy/prometheus/targets.json
#
# Each node is scraped at its Status.Addr on METRICS_PORT (default 9323),
# labelled with its hostname (node) and role. Run it from cron or after
# joins and removals; Prometheus picks the file up without a restart.
set -euo pipefail
PORT=${METRICS_PORT:-9323}
mapfile -t ids < <(docker node ls -q)
[ ${#ids[@]} -gt 0 ] || { echo "targets.sh: no nodes (is DOCKER_HOST a manager?)" >&2; exit 1; }
sep=''
echo '['
while read -r name addr role; do
  printf '%s  {"targets": ["%s:%s"], "labels": {"node": "%s", "role": "%s"}}' "$sep" "$addr" "$PORT" "$name" "$role"
  sep=$',\n'
done < <(docker node inspect --format '{{.Description.Hostname}} {{.Status.Addr}} {{.Spec.Role}}' "${ids[@]}")
printf '\n]\n'
