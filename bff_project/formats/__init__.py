"""Date formats for the admin: one format everywhere (see settings.FORMAT_MODULE_PATH)."""
