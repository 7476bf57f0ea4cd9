"""The layers of the security middleware (server/security.py composes them), outermost first:

host.py     the Host allow-list (Starlette's TrustedHostMiddleware decides; 400 in our words)
headers.py  the security headers (CSP and friends) on every HTTP answer, 500s included
cors.py     cross-origin reads for configured origins only (Starlette's CORSMiddleware)
origin.py   cross-site writes (CSRF) and cross-site WebSockets refused with 403
access.py   the access token: 401, or close 4401 for a WebSocket; ?token= sets a cookie
size.py     request bodies and WebSocket messages above the limits of server/limits.py

settings.py holds what they enforce (`SecuritySettings`) and answers.py how they refuse.
"""
