#!/usr/bin/env bash
# Start a GPU host container: bring the manifest's custom nodes and models up to
# date (only what is missing), then ComfyUI + worker pairs until stopped.
set -euo pipefail
: "${COMFY_MULTI_GATEWAY_URL:?set COMFY_MULTI_GATEWAY_URL to the https URL of the app host}"
: "${COMFY_MULTI_WORKER_TOKEN:?set COMFY_MULTI_WORKER_TOKEN (comfy-multi worker-token create NAME)}"
manifest="${COMFY_MULTI_MANIFEST_URL:-/opt/gpu-host/manifest.toml}"
gpus="${COMFY_MULTI_GPUS:-1}"
comfy-multi gpu-host setup --manifest "$manifest" --dir /opt/gpu-host --models-dir /models \
  --gpus "$gpus"
exec comfy-multi gpu-host up --dir /opt/gpu-host
