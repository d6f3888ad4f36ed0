"""The local web control panel: live preview, stats and controls on 127.0.0.1.

:func:`bgcam.web.server.start_web` serves it (Starlette on uvicorn, in a thread of the daemon);
:mod:`bgcam.web.app` holds the routes and the security rules; :mod:`bgcam.web.access` the token
that ``bgcam open`` reads. Nothing is imported here, so ``bgcam open`` stays light.
"""
