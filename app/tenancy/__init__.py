"""One analyzer for many teams (off unless TENANCY is on): who may ask, about what, and which
backend tenant answers.

A caller proves who it is with a bearer token (a static one from ACCESS_FILE, or a Kubernetes
ServiceAccount token checked with the TokenReview API), or, for a person behind an authenticating
proxy, with groups the proxy passes from a trusted address. What it may ask about is its scope:
namespaces, optionally narrowed to services. The scope is enforced in the queries themselves:
every selector the analyzer writes carries the request's namespace, which the scope must cover,
and each namespace may be mapped to the Mimir/Cortex tenant that holds its data.
"""
