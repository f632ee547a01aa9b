"""Services over the queue, shared by the HTTP faces: users, files, submit,
the platform object and the auth checks."""
