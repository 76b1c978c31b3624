"""The image codec built on the models: ``.lic`` container, image I/O, tiling, API.

- :mod:`~licodec.codec.container`: the byte format (no torch), parse/serialise;
- :mod:`~licodec.codec.image_io`: reading images of any mode, alpha planes;
- :mod:`~licodec.codec.tiling`: the tile grid for large images;
- :mod:`~licodec.codec.api`: ``compress``, ``decompress``, ``Codec``;
- :mod:`~licodec.codec.files`: the one atomic writer and bounded reads of inputs.
"""
