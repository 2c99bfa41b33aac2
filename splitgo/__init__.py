"""The product shell: settings, database, logs, the node, and the HTTP and bot edges."""
