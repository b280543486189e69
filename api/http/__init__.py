"""The JSON API: litestar route modules (registered in `api/app.py`), wire types, API keys'
checks, rate limits, audit, metrics and background jobs. Handlers decode, call one domain
function and encode; the rules live in `offers` and `segmentation`."""
