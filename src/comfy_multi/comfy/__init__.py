"""ComfyUI's own server API, spoken per user at /u/<user>/."""
