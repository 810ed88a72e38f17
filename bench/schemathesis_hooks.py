"""Schemathesis hooks for bench/schemathesis.sh (loaded via SCHEMATHESIS_HOOKS).

Some Idempotency-Key values that schemathesis generates as "not matching the
pattern" never reach berth as such, so berth cannot refuse them; the OpenAPI
document says so. Such cases are not sent; every other invalid key still is,
and must be refused with 422.

- Leading or trailing spaces and tabs: HTTP does not count them as part of a
  field's value (RFC 9110, section 5.5), so " k" arrives as the valid key "k".
- The characters U+0080 to U+00FF: the requests library sends them as single
  Latin-1 bytes, which are not UTF-8, and Rocket, berth's HTTP layer, drops a
  header whose value is not UTF-8 before berth sees it (its log says
  "Dropping header"): the request arrives without a key.
"""

import schemathesis


def _not_seen_as_sent(value):
    if not isinstance(value, str):
        return False
    padded = value != value.strip(" \t")
    not_utf8_on_the_wire = any(0x80 <= ord(c) <= 0xFF for c in value)
    return padded or not_utf8_on_the_wire


@schemathesis.hook
def filter_case(context, case):
    headers = case.headers or {}
    return not any(
        name.lower() == "idempotency-key" and _not_seen_as_sent(value)
        for name, value in headers.items()
    )


# A moving container's files arrive as a tar stream (`application/x-tar`),
# which has no JSON Schema to generate from: any bytes will do, since the
# node refuses them unless the request is signed with the cluster secret.
from hypothesis import strategies as st

schemathesis.openapi.media_type("application/x-tar", st.binary(max_size=4096))
