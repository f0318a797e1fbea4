"""Every figure of the package. A figure takes precomputed numbers or result objects and
returns a :class:`matplotlib.figure.Figure` that the user can restyle; nothing here fits
or resamples.
"""
