"""Images for schemathesis (tests/test_openapi.py), loaded through SCHEMATHESIS_HOOKS.

The OpenAPI document says what an upload is: an image of one of the media types its
encoding names. Schemathesis draws the bytes of a media type from a strategy registered
for it, so each is registered here: small random pictures, of random sizes, in that format.
"""

import io

import numpy as np
import schemathesis
from hypothesis import strategies as st
from PIL import Image

FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/bmp": "BMP",
           "image/tiff": "TIFF", "image/gif": "GIF"}


def picture(fmt: str) -> st.SearchStrategy[bytes]:
    def encode(height: int, width: int, seed: int) -> bytes:
        rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, fmt)
        return buf.getvalue()

    return st.builds(encode, st.integers(1, 64), st.integers(1, 64), st.integers(0, 2**32 - 1))


for media_type, fmt in FORMATS.items():
    schemathesis.openapi.media_type(media_type, picture(fmt))


@schemathesis.hook
def filter_case(context, case) -> bool:
    """Leave out form bodies with a field drawn as a list or an object. A list goes out as
    one part per element that can be sent (none at all for [] or [None]), so the request
    that arrives may be a valid one, which the server serves; schemathesis then reports the
    invalid request it drew as accepted, as its check of what was sent stops at the file
    part. (Repeated and malformed fields are tested in tests/test_serve.py.)"""
    body = case.body
    return not (isinstance(body, dict) and any(isinstance(v, (list, dict)) for v in body.values()))
