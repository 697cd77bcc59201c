"""Headers every response carries: no MIME sniffing, no caching of tokens
(the public signing keys alone set a `cache-control` of their own).

The request log (web/request_log.py), the outermost layer, adds them.
"""

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}
