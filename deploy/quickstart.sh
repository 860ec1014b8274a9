#!/usr/bin/env bash
# Sets the machine up and runs a single-node shoal cluster on the embedded
# store: the agent runs in the background (log: /var/log/shoal-agent.log) with
# its API on /run/shoal/docker.sock, and the swarm is initialised.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/setup.sh
SOCK=/run/shoal/docker.sock
if ! DOCKER_HOST=unix://$SOCK docker version >/dev/null 2>&1; then
  echo "quickstart: starting shoal agent"
  nohup node dist/agent/cli/main.js agent --api-socket "$SOCK" >>/var/log/shoal-agent.log 2>&1 &
  for _ in $(seq 1 100); do DOCKER_HOST=unix://$SOCK docker version >/dev/null 2>&1 && break; sleep 0.2; done
fi
export DOCKER_HOST=unix://$SOCK
if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
  docker swarm init --advertise-addr 127.0.0.1
fi
docker node ls
echo
echo "shoal is running. Use it with:  export DOCKER_HOST=unix://$SOCK"
