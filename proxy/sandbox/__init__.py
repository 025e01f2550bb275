"""Local, stateful emulators of vendor APIs, for tests and the out-of-the-box demo.

`python -m proxy.sandbox` serves the HubSpot CRM emulator; see `server` for embedding.
"""
