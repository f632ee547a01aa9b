"""Services over the queue, shared by the HTTP faces: users, files, submit,
the platform object and the auth checks, bounded JSON bodies and heavy work
run off the event loop."""
