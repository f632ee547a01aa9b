"""The GPU worker: drives one ComfyUI server for the platform.

A worker sits beside a ComfyUI server and is the only thing that talks to it.
It dials out to the gateway's worker channel (``docs/worker-protocol.md``),
claims one job at a time and runs it on ComfyUI:

- ``comfyui``      ComfyUI's HTTP routes (``/prompt``, ``/view``, ``/upload/image`` ...)
- ``socket``       one websocket connection to ComfyUI: greeting, events, binary previews
- ``stream``       that websocket kept open for the worker's life, feeding the running job
- ``channel``      the gateway's ``/worker/v1`` calls, with retry, backoff and jitter
- ``capabilities`` node classes, model files and digest of ``/object_info``
- ``inputs``       job input files: gateway -> ComfyUI, prompt references rewritten
- ``outputs``      output files: ComfyUI ``/view`` -> gateway, streamed
- ``relay``        batched event relay and latest-wins previews
- ``job``          one job's life, from claim to report (``outcome``: how it ended)
- ``janitor``      ComfyUI-side cleanup after a job
- ``runner``       registration, heartbeat, claim loop, signals
- ``command``      the ``comfy-multi worker`` command
- ``retry``, ``multipart``, ``errors``: backoff with jitter, streamed form uploads,
  the worker's exceptions

Cleanup on ComfyUI's side: ComfyUI has no route that deletes files, so after
each job the worker (1) removes the job's history entry (``POST /history``),
(2) when started with ``--comfyui-input-dir`` (the worker shares ComfyUI's
filesystem) deletes the job's input folder ``cm-<job id>-<digest of the lease token>``, and
otherwise (3) overwrites every file it uploaded with a 1x1 PNG placeholder
(``/upload/image`` with ``overwrite``), which frees the space and leaves only
those placeholders behind. LoadImage lists only the top of the input folder, so
these folders never show in ComfyUI's file lists nor change its
``/object_info``.
"""
