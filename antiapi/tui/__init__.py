"""antiapi's terminal dashboard (Textual): quota bars, request log, routing, accounts, settings.

Everything it shows or edits goes through the admin API (:mod:`antiapi.tui.client`); its only
code shared with the server is :mod:`antiapi.wire.admin`. Entry points: :func:`antiapi.tui.cli.main`
(``antiapi tui``) and :func:`antiapi.tui.cli.run_attached` (``antiapi serve``).

May import: antiapi.wire.admin (and the pure antiapi.wire.sse), antiapi.errors, antiapi.paths,
textual, rich, httpx. Never server, providers, routing or litestar. Nothing runs at import.
"""
