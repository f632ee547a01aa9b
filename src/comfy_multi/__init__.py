"""comfy-multi: the real ComfyUI for a room full of people, one fair queue behind it."""

__version__ = "0.1.0"
