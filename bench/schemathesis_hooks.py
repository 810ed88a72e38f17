"""Schemathesis hooks for bench/schemathesis.sh (loaded via SCHEMATHESIS_HOOKS).

Rocket, berth's HTTP layer, drops a header whose value is not valid UTF-8
before berth sees it (its log says "Dropping header"). The requests library
sends the characters U+0080 to U+00FF as single Latin-1 bytes, which are not
UTF-8, so an Idempotency-Key made of them reaches berth as no key at all and
berth cannot refuse it: the request goes through without a key. The OpenAPI
document says so. Such cases are therefore not sent; every other invalid key
still is, and must be refused with 422.
"""

import schemathesis


def _not_utf8_on_the_wire(value):
    return isinstance(value, str) and any(0x80 <= ord(c) <= 0xFF for c in value)


@schemathesis.hook
def filter_case(context, case):
    headers = case.headers or {}
    return not any(
        name.lower() == "idempotency-key" and _not_utf8_on_the_wire(value)
        for name, value in headers.items()
    )
