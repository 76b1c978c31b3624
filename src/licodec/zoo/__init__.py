"""Model zoo: the registry (:mod:`~licodec.zoo.registry`; build models through
:mod:`licodec.models`), our weight format, and imports of the authors' checkpoints."""
