"""Evaluation: rate-distortion metrics, classical baselines, BD-rate, plots.

* :mod:`licodec.eval.metrics` - PSNR / MS-SSIM on 8-bit RGB, bpp from real byte counts.
* :mod:`licodec.eval.results` - CompressAI-format results JSON (units, averaging, I/O).
* :mod:`licodec.eval.bdrate` - Bjøntegaard delta rate / PSNR (cubic and PCHIP).
* :mod:`licodec.eval.baselines` - JPEG, WebP, JPEG 2000, AVIF, JPEG XL and HEVC sweeps.
* :mod:`licodec.eval.reference` - published Kodak curves bundled with the package.
* :mod:`licodec.eval.plot` - RD curves with matplotlib.
* :mod:`licodec.eval.evaluate` - RD numbers of a learned model on real ``.lic`` files (or estimated).
* :mod:`licodec.eval.compare` - equal-file-size crops of a learned model and classical codecs.
* :mod:`licodec.eval.bitmap` - per-pixel map of the bits a learned model spends.

Nothing is imported here, so ``import licodec.eval`` stays cheap.
"""
