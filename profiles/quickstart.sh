#!/bin/sh
# The main job on the embedded default (no server): queue jobs, process them with the seed's worker, and
# push the results on, as `procx node example.js | pushx` does on S3 and SQS.
set -eu
cd "$(dirname "$0")/.."
export PROCX_ENV_FILE=profiles/quickstart.env PUSHX_ENV_FILE=profiles/quickstart.env
rm -rf .procx-demo && mkdir .procx-demo
if command -v node >/dev/null 2>&1; then worker="node profiles/example.js"; else
  worker="python3 -c 'import json,os,sys;w=json.load(open(os.environ[\"PROCX_PAYLOAD_FILE\"]));w[\"metadata\"]={\"processedBy\":\"python\"};print(json.dumps(w))'"
fi

echo "== pushx: queue three jobs"
for i in 1 2 3; do pushx -sqlite-queue jobs -in "{\"id\": $i, \"name\": \"job $i\"}"; done

echo "== procx $worker | pushx: one job through the worker, its result pushed to the results queue"
eval "procx -daemon=false $worker" | pushx

echo "== procx -daemon -until-empty: the rest of the jobs, results on the terminal"
eval "procx -daemon -until-empty $worker"

echo "== procx on the results queue (no command: print and clear)"
procx -daemon=false -sqlite-queue results; echo
